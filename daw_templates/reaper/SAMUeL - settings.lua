-- SAMUeL - settings
-- One dialog for everything the other SAMUeL scripts use: the samuel-live command, the engine's
-- host and UDP port, timeout, seed/steps/CFG, instrument and SoundFont, whether to insert the
-- MIDI file, and the folder time-selection cuts are written to. Saved per machine (ExtState
-- "SAMUeL"); an empty field goes back to the default.

local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local samuel = dofile(dir .. "samuel_common.lua")

samuel.settings_dialog()

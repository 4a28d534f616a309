-- SAMUeL - generate from live capture
-- Asks the engine to accompany what it has captured from the singer (/samuel/generate with the
-- "capture" source), waits in the background and inserts the result (and its MIDI) on new tracks.
-- Placement: if REAPER is playing, the capture is taken to end at the play position of the
-- moment you ran the script, so the result starts DURATION seconds before it; when stopped, the
-- result starts at the edit cursor.

local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local samuel = dofile(dir .. "samuel_common.lua")

local function request_position()
  if reaper.GetPlayState() & 1 == 1 then
    return reaper.GetPlayPosition(), true
  end
  return reaper.GetCursorPosition(), false
end

local function main()
  local anchor, playing = request_position()
  local args = samuel.generate_args("capture", samuel.output_name("live"))
  local log = samuel.start(samuel.send_command("/samuel/generate", args), "capture")
  if not log then
    return
  end
  samuel.wait(log, function(state)
    local start = anchor
    if playing then
      start = math.max(0, anchor - (state.done.duration or 0))
    end
    samuel.insert_result(state.done, start, nil, nil)
  end)
end

main()

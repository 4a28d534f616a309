-- SAMUeL for REAPER: code shared by the "SAMUeL - ..." scripts (loaded with dofile).
--
-- A ReaScript has no sockets, so every request goes through the engine's own client:
-- `samuel-live send ADDRESS ARGS...` prints each reply as one line ("/samuel/done 3 /x.wav ...")
-- and exits after the final one. Long requests run in the background: the command line is
-- written to a small shell (or .bat) file whose output goes to a log file, and a reaper.defer
-- loop reads that log until a final reply or the exit marker appears. REAPER never blocks.
--
-- Settings: run "SAMUeL - settings.lua" (a dialog; saved per machine in ExtState "SAMUeL"),
-- or edit the defaults below. Keys: M.FIELDS.

local M = {}

M.EXT = "SAMUeL"
M.defaults = {
  cli = "samuel-live", -- full path if REAPER's PATH does not contain it
  host = "127.0.0.1",
  port = "9000",       -- the engine's UDP port (server.udp_port)
  timeout = "3600",    -- seconds `samuel-live send` waits for the result
  seed = "-1",         -- -1 = random
  steps = "0",         -- 0 = the engine's default
  cfg = "-1",          -- < 0 = the engine's default
  instrument = "-",    -- piano, strings, 0-127, tones, none; - = the engine's render.instrument
  soundfont = "-",     -- an .sf2/.sf3 in the engine's render.soundfont_dirs; - = its default
  midi = "1",          -- 1 = also insert the result's MIDI file on its own track
  cut_dir = "",        -- where time-selection cuts are written ("" = <resource>/SAMUeL/cuts);
                       -- must be one of the engine's render.allowed_input_dirs
}

--- The settings dialog's fields, in order: key and caption.
M.FIELDS = {
  { "cli", "samuel-live command" }, { "host", "Engine host" }, { "port", "Engine UDP port" },
  { "timeout", "Timeout (s)" }, { "seed", "Seed (-1 = random)" },
  { "steps", "Steps (0 = default)" }, { "cfg", "CFG (-1 = default)" },
  { "instrument", "Instrument (- = default)" }, { "soundfont", "SoundFont (- = default)" },
  { "midi", "Insert MIDI (1/0)" }, { "cut_dir", "Folder for selection cuts" },
}

--- A setting: the ExtState value if one was saved, else the default above.
function M.setting(key)
  local saved = reaper.GetExtState(M.EXT, key)
  if saved ~= nil and saved ~= "" then
    return saved
  end
  return M.defaults[key]
end

function M.is_windows()
  return reaper.GetOS():match("^Win") ~= nil
end

--- Show an engine or set-up error to the user (never fail silently).
function M.error(message)
  reaper.ShowMessageBox(message, "SAMUeL", 0)
end

-- Quoting --------------------------------------------------------------------------------------

local function quote_posix(word)
  return "'" .. word:gsub("'", "'\\''") .. "'"
end

local function quote_windows(word)
  return '"' .. word:gsub('"', '""'):gsub("%%", "%%%%") .. '"'
end

function M.quote(word)
  word = tostring(word)
  if M.is_windows() then
    return quote_windows(word)
  end
  return quote_posix(word)
end

--- The `samuel-live send` command line for ADDRESS with ARGS (a list of strings/numbers).
function M.send_command(address, args)
  local words = {
    M.quote(M.setting("cli")), "send",
    "--host", M.quote(M.setting("host")),
    "--port", M.quote(M.setting("port")),
    "--timeout", M.quote(M.setting("timeout")),
    M.quote(address),
  }
  for _, arg in ipairs(args) do
    words[#words + 1] = M.quote(arg)
  end
  return table.concat(words, " ")
end

-- Running processes ----------------------------------------------------------------------------

--- A folder for this session's scripts and logs, created on demand.
function M.work_dir()
  local dir = reaper.GetResourcePath() .. "/SAMUeL"
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then
    error("cannot write " .. path .. ": " .. tostring(err))
  end
  f:write(text)
  f:close()
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

--- Write COMMAND into a script that appends its output and a final "samuel-exit CODE" line to
--- LOG (or prints them when LOG is nil); returns the line to hand to reaper.ExecProcess.
local function script_for(command, log, name)
  local dir = M.work_dir()
  if M.is_windows() then
    local bat = dir .. "\\" .. name .. ".bat"
    local sink = log and (" > " .. quote_windows(log) .. " 2>&1") or " 2>&1"
    local tail = log and (" >> " .. quote_windows(log)) or ""
    write_file(bat, "@echo off\r\n" .. command .. sink .. "\r\necho samuel-exit %ERRORLEVEL%"
      .. tail .. "\r\n")
    return 'cmd.exe /C "' .. bat .. '"'
  end
  local sh = dir .. "/" .. name .. ".sh"
  local sink = log and (" > " .. quote_posix(log) .. " 2>&1") or " 2>&1"
  local tail = log and (" >> " .. quote_posix(log)) or ""
  write_file(sh, command .. sink .. "\necho \"samuel-exit $?\"" .. tail .. "\n")
  return '/bin/sh "' .. sh .. '"'
end

--- Start COMMAND in the background; its output goes to the returned log file path.
function M.start(command, name)
  local log = M.work_dir() .. "/" .. name .. ".log"
  write_file(log, "")
  local line = script_for(command, log, name)
  if reaper.ExecProcess(line, -1) == nil then
    M.error("SAMUeL: could not start\n" .. line)
    return nil
  end
  return log
end

--- Run COMMAND and wait at most TIMEOUT_MS; returns its output text (nil if it did not run).
function M.run(command, name, timeout_ms)
  local result = reaper.ExecProcess(script_for(command, nil, name), timeout_ms)
  if result == nil then
    return nil
  end
  return (result:gsub("^[^\n]*\n", "", 1)) -- drop ExecProcess's own exit-code line
end

-- Parsing `samuel-live send` output ------------------------------------------------------------

local function utf8_of(code)
  return utf8.char(code)
end

--- Decode the JSON string that starts at TEXT[i] (a '"'); returns the string and the next index.
local function json_string(text, i)
  local out, j = {}, i + 1
  while j <= #text do
    local c = text:sub(j, j)
    if c == '"' then
      return table.concat(out), j + 1
    elseif c == "\\" then
      local e = text:sub(j + 1, j + 1)
      local simple = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f" }
      if e == "u" then
        local code = tonumber(text:sub(j + 2, j + 5), 16) or 63
        j = j + 6
        if code >= 0xD800 and code <= 0xDBFF and text:sub(j, j + 1) == "\\u" then
          local low = tonumber(text:sub(j + 2, j + 5), 16) or 0xDC00
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          j = j + 6
        end
        out[#out + 1] = utf8_of(code)
      else
        out[#out + 1] = simple[e] or e
        j = j + 2
      end
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
  return table.concat(out), j
end

--- Split one printed reply ("/addr arg \"quoted arg\" 1.5") into address and argument list.
function M.parse_line(line)
  local words, i = {}, 1
  while i <= #line do
    local c = line:sub(i, i)
    if c == " " then
      i = i + 1
    elseif c == '"' then
      words[#words + 1], i = json_string(line, i)
    else
      local stop = line:find(" ", i, true) or (#line + 1)
      words[#words + 1] = line:sub(i, stop - 1)
      i = stop
    end
  end
  local address = table.remove(words, 1)
  return address, words
end

--- Everything a log says so far: ack job, final reply, exit code and diagnostic lines.
function M.parse_output(text)
  local state = { notes = {} }
  for line in (text or ""):gmatch("[^\r\n]+") do
    local exit_code = line:match("^samuel%-exit (%-?%d+)")
    if exit_code then
      state.exit = tonumber(exit_code)
    elseif line:sub(1, 1) == "/" then
      local address, args = M.parse_line(line)
      M.apply_reply(state, address, args)
    else
      state.notes[#state.notes + 1] = line
    end
  end
  return state
end

--- The folder part of PATH, with its trailing separator ("" when it has none).
function M.folder_of(path)
  return path:match("^(.*[/\\])") or ""
end

function M.apply_reply(state, address, args)
  if address == "/samuel/generate/ack" and not state.job then
    state.job = tonumber(args[1])
  elseif address == "/samuel/progress" then
    state.step, state.total, state.eta = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  elseif address == "/samuel/done" then
    state.done = { job = tonumber(args[1]), path = args[2], duration = tonumber(args[3]) }
    if args[10] and args[10] ~= "" then -- the MIDI file's name, in the audio's folder
      state.done.midi = M.folder_of(args[2]) .. args[10]
    end
  elseif address == "/samuel/cancelled" then
    state.cancelled = tonumber(args[1])
  elseif address == "/samuel/error" then
    state.failure = { address = args[1], message = args[2], job = tonumber(args[3]) }
  elseif address == "/samuel/cancel/reply" then
    state.cancel_reply = { job = tonumber(args[1]), cancelled = tonumber(args[2]) }
  end
end

--- Text for a message box when a request ended without a result.
function M.describe_failure(state)
  if state.failure then
    return "The engine reported an error:\n\n" .. tostring(state.failure.message)
  end
  local notes = table.concat(state.notes, "\n")
  if notes == "" then
    notes = "(no output)"
  end
  return "samuel-live send ended (exit " .. tostring(state.exit) .. ") without a result:\n\n"
    .. notes .. "\n\nIs the engine running (`samuel-live serve`)? Is `" .. M.setting("cli")
    .. "` the right command? Set its full path in \"SAMUeL - settings\" (samuel-live command)."
end

-- Waiting for a job ----------------------------------------------------------------------------

--- One line on the job's state for the progress window.
function M.status_text(state)
  if state.step and state.total then
    local left = (state.eta and state.eta >= 0) and string.format(", %.0f s left", state.eta) or ""
    return string.format("SAMUeL job %s: step %d of %d%s", tostring(state.job), state.step,
      state.total, left)
  elseif state.job then
    return "SAMUeL job " .. state.job .. ": queued"
  end
  return "SAMUeL: sending the request..."
end

--- A small window that shows TEXT; it may be closed, the job goes on.
function M.show_progress(text)
  if not M.window then
    gfx.init("SAMUeL", 420, 60)
    M.window = true
  end
  if gfx.getchar() < 0 then
    return -- closed by the user
  end
  gfx.set(0.12, 0.12, 0.12)
  gfx.rect(0, 0, gfx.w, gfx.h, 1)
  gfx.set(0.9, 0.9, 0.9)
  gfx.setfont(1, "Arial", 16)
  gfx.x, gfx.y = 12, 20
  gfx.drawstr(text)
  gfx.update()
end

--- Poll LOG with reaper.defer until the job ends, showing progress in a small window; then
--- call on_done(state) (the caller opens its own undo block) or report the failure.
--- Never blocks the UI.
function M.wait(log, on_done)
  local deadline = reaper.time_precise() + tonumber(M.setting("timeout")) + 30
  local function tick()
    local state = M.parse_output(M.read_file(log))
    if state.job then
      reaper.SetExtState(M.EXT, "job", tostring(state.job), false)
    end
    M.show_progress(M.status_text(state))
    if state.done then
      M.finish()
      on_done(state)
    elseif state.cancelled then
      M.finish()
    elseif state.failure or state.exit then
      M.finish()
      M.error(M.describe_failure(state))
    elseif reaper.time_precise() > deadline then
      M.finish()
      M.error("SAMUeL: no result after " .. M.setting("timeout") .. " s; see " .. log)
    else
      reaper.defer(tick)
    end
  end
  reaper.defer(tick)
end

function M.finish()
  reaper.DeleteExtState(M.EXT, "job", false)
  if M.window then
    gfx.quit()
    M.window = nil
  end
end

-- Placing the result ---------------------------------------------------------------------------

--- Insert PATH on a new track named NAME at INDEX, its start at POSITION; returns the item.
local function insert_on_new_track(path, name, index, position, trim)
  reaper.InsertTrackAtIndex(index, true)
  local track = reaper.GetTrack(0, index)
  reaper.GetSetMediaTrackInfo_String(track, "P_NAME", name, true)
  reaper.SetOnlyTrackSelected(track)
  reaper.SetEditCurPos(position, false, false)
  reaper.InsertMedia(path, 0) -- 0 = on the selected track, at the edit cursor
  local item = reaper.GetSelectedMediaItem(0, 0)
  if item and trim then
    M.trim(item, position, trim)
  end
  return item
end

--- Insert the result DONE (its audio, and its MIDI file when there is one and the "midi"
--- setting is 1) on new tracks below TRACK_INDEX (0-based; nil = at the end), each starting
--- at POSITION, as one undo step. TRIM (optional) = { offset, length, playrate } of the takes.
function M.insert_result(done, position, track_index, trim)
  if not reaper.file_exists(done.path) then
    M.error("SAMUeL: the engine reported " .. done.path .. " but the file is not there.")
    return nil
  end
  local midi = M.setting("midi") == "1" and done.midi and reaper.file_exists(done.midi)
  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
  local index = track_index and (track_index + 1) or reaper.CountTracks(0)
  local cursor = reaper.GetCursorPosition()
  local item = insert_on_new_track(done.path, "SAMUeL accompaniment", index, position, trim)
  if midi then
    insert_on_new_track(done.midi, "SAMUeL MIDI", index + 1, position, trim)
  end
  reaper.SetEditCurPos(cursor, false, false)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock("SAMUeL: insert accompaniment", -1)
  return item
end

--- Show the same window of the result as the vocal item shows of its source.
function M.trim(item, position, trim)
  local take = reaper.GetActiveTake(item)
  reaper.SetMediaItemInfo_Value(item, "D_POSITION", position)
  reaper.SetMediaItemInfo_Value(item, "D_LENGTH", trim.length)
  if take then
    reaper.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", trim.offset)
    reaper.SetMediaItemTakeInfo_Value(take, "D_PLAYRATE", trim.playrate or 1)
  end
end

--- A file name inside the engine's render folder, safe for its name rules.
function M.output_name(stem)
  local safe = (stem or "take"):gsub("%.[%w]+$", ""):gsub("[^%w%.%-_ ]", "_"):gsub("^[%. ]+", "")
  if safe == "" then
    safe = "take"
  end
  return "reaper/" .. safe:sub(1, 80) .. "-accomp-" .. os.date("%Y%m%d-%H%M%S") .. ".wav"
end

--- The generate arguments shared by all scripts: SOURCE, OUTPUT, seed, steps, cfg; then, only
--- when an instrument or SoundFont is chosen, sampler, post, priority, loop_bars, autoplay
--- (the engine's defaults: -, -, 5, 0, 0), instrument and soundfont.
function M.generate_args(source, output)
  local args = { source, output, M.setting("seed"), M.setting("steps"), M.setting("cfg") }
  local instrument, soundfont = M.setting("instrument"), M.setting("soundfont")
  if instrument ~= "-" or soundfont ~= "-" then
    for _, value in ipairs({ "-", "-", "5", "0", "0", instrument, soundfont }) do
      args[#args + 1] = value
    end
  end
  return args
end

-- Settings dialog ------------------------------------------------------------------------------

--- Ask for every setting in one dialog (GetUserInputs) and save the answers per machine.
--- Returns true when saved, false when cancelled. Fields are separated by newlines, so
--- values may contain commas.
function M.settings_dialog()
  local captions, values = {}, {}
  for i, field in ipairs(M.FIELDS) do
    captions[i] = field[2]
    values[i] = M.setting(field[1])
  end
  captions[#captions + 1] = "separator=\n" -- the separator of the values, not the captions
  captions[#captions + 1] = "extrawidth=220"
  local ok, answer = reaper.GetUserInputs("SAMUeL settings", #M.FIELDS,
    table.concat(captions, ","), table.concat(values, "\n"))
  if not ok then
    return false
  end
  local i = 0
  for value in (answer .. "\n"):gmatch("([^\n]*)\n") do
    i = i + 1
    local field = M.FIELDS[i]
    if field then
      value = value:match("^%s*(.-)%s*$")
      if value == "" or value == M.defaults[field[1]] then
        reaper.DeleteExtState(M.EXT, field[1], true)
      else
        reaper.SetExtState(M.EXT, field[1], value, true)
      end
    end
  end
  return true
end

return M

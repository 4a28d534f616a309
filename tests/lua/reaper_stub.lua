-- A stand-in for REAPER's `reaper` table, enough to run the SAMUeL ReaScripts under plain Lua.
--
-- usage: lua5.4 reaper_stub.lua SCENARIO.lua SCRIPT.lua
-- SCENARIO.lua returns a table: items (the selected media items), tracks (count), cursor,
-- playing/play_position, replies (lines the background `samuel-live send` "prints": one is
-- appended to its log per defer tick, then "samuel-exit <exit_code>"), exec_output (what a
-- blocking ExecProcess returns), extstate, files (paths that exist), os, resource,
-- selection ({start, end} time selection), audio ({rate, channels}: the take's audio, whose
-- sample at item time t is t/100 on channel 1 and -t/100 on channel 2), user_inputs ({ok,
-- answer}: what GetUserInputs returns).
-- It runs SCRIPT, then the defer callbacks in a loop, and prints what REAPER saw as JSON.

local scenario = dofile(arg[1])
local script = arg[2]

local record = {
  exec = {}, inserts = {}, undo = {}, messages = {}, new_tracks = {}, defer_ticks = 0,
  cursor_moves = {}, progress = {}, window_closed = false,
}
local queue = {}
local undo_depth = 0
local background = nil -- { log = path, next = 1 }
local extstate = scenario.extstate or {}
local files = scenario.files or {}

-- Project model --------------------------------------------------------------------------------

local tracks = {}
for i = 1, scenario.tracks or 1 do
  tracks[i] = { name = "track " .. i }
end
local selected_track = nil
local cursor = scenario.cursor or 0

local function make_item(spec)
  local track = tracks[(spec.track or 0) + 1]
  local take = { source = { path = spec.path }, values = {
    D_STARTOFFS = spec.offset or 0, D_PLAYRATE = spec.playrate or 1 }, midi = spec.midi }
  local item = { track = track, take = take, values = {
    D_POSITION = spec.position or 0, D_LENGTH = spec.length or 1 } }
  take.item = item
  return item
end

local selected_items = {}
for _, spec in ipairs(scenario.items or {}) do
  selected_items[#selected_items + 1] = make_item(spec)
end

local function track_index(track)
  for i, t in ipairs(tracks) do
    if t == track then
      return i - 1
    end
  end
  return -1
end

-- The reaper table -----------------------------------------------------------------------------

reaper = {}

function reaper.GetOS() return scenario.os or "Other" end
function reaper.GetResourcePath() return scenario.resource end
function reaper.RecursiveCreateDirectory(path) os.execute("mkdir -p '" .. path .. "'") return 1 end
function reaper.time_precise() return os.clock() end
function reaper.file_exists(path) return files[path] == true end

function reaper.GetExtState(section, key) return extstate[key] or "" end
function reaper.SetExtState(section, key, value) extstate[key] = value end
function reaper.DeleteExtState(section, key) extstate[key] = nil end
function reaper.GetUserInputs(title, count, captions, defaults)
  record.dialog = { title = title, count = count, captions = captions, defaults = defaults }
  local answer = scenario.user_inputs or { ok = false, answer = "" }
  return answer.ok, answer.answer
end

function reaper.ShowMessageBox(message, title, kind)
  record.messages[#record.messages + 1] = message
  return 1
end
function reaper.ShowConsoleMsg(text) end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

function reaper.ExecProcess(line, timeout)
  local script_path = line:match('^/bin/sh "(.*)"$')
  local text = script_path and read(script_path) or nil
  record.exec[#record.exec + 1] = { line = line, timeout = timeout, script = text }
  if timeout == -1 then
    background = { log = text and text:match("> '([^']*)' 2>&1"), next = 1 }
    return ""
  end
  return tostring(scenario.exit_code or 0) .. "\n" .. (scenario.exec_output or "")
end

function reaper.defer(fn) queue[#queue + 1] = fn end

function reaper.Undo_BeginBlock()
  undo_depth = undo_depth + 1
  record.undo[#record.undo + 1] = "begin"
end
function reaper.Undo_EndBlock(description)
  undo_depth = undo_depth - 1
  record.undo[#record.undo + 1] = "end:" .. description
end
function reaper.PreventUIRefresh() end
function reaper.UpdateArrange() end

function reaper.CountTracks() return #tracks end
function reaper.GetTrack(_, index) return tracks[index + 1] end
function reaper.InsertTrackAtIndex(index)
  table.insert(tracks, index + 1, { name = "" })
  record.new_tracks[#record.new_tracks + 1] = index
end
function reaper.GetSetMediaTrackInfo_String(track, key, value, set)
  if set then track[key] = value end
  return true, track[key] or ""
end
function reaper.SetOnlyTrackSelected(track) selected_track = track end
function reaper.GetMediaTrackInfo_Value(track, key)
  assert(key == "IP_TRACKNUMBER", key)
  return track_index(track) + 1
end

function reaper.GetPlayState() return scenario.playing and 1 or 0 end
function reaper.GetPlayPosition() return scenario.play_position or 0 end
function reaper.GetCursorPosition() return cursor end
function reaper.SetEditCurPos(position)
  cursor = position
  record.cursor_moves[#record.cursor_moves + 1] = position
end

function reaper.GetSelectedMediaItem(_, index) return selected_items[index + 1] end
function reaper.GetActiveTake(item) return item.take end
function reaper.TakeIsMIDI(take) return take.midi == true end
function reaper.GetMediaItemTake_Source(take) return take.source end
function reaper.GetMediaSourceFileName(source) return source.path end
function reaper.GetMediaItem_Track(item) return item.track end
function reaper.GetMediaItemInfo_Value(item, key) return item.values[key] end
function reaper.GetMediaItemTakeInfo_Value(take, key) return take.values[key] end
function reaper.SetMediaItemInfo_Value(item, key, value)
  item.values[key] = value
  if item.inserted then item.inserted.item_values[key] = value end
end
function reaper.SetMediaItemTakeInfo_Value(take, key, value)
  take.values[key] = value
  if take.item.inserted then take.item.inserted.take_values[key] = value end
end

-- Time selection and audio accessors -------------------------------------------------------------

function reaper.GetSet_LoopTimeRange(set)
  assert(not set, "the scripts only read the time selection")
  local selection = scenario.selection or { 0, 0 }
  return selection[1], selection[2]
end
function reaper.GetMediaSourceSampleRate() return (scenario.audio or {}).rate or 44100 end
function reaper.GetMediaSourceNumChannels() return (scenario.audio or {}).channels or 2 end
function reaper.CreateTakeAudioAccessor(take)
  record.accessors = (record.accessors or 0) + 1
  return { take = take }
end
function reaper.DestroyAudioAccessor() record.accessors = record.accessors - 1 end
function reaper.new_array(size)
  local values = {}
  return { size = size, values = values, table = function() return values end }
end
function reaper.GetAudioAccessorSamples(accessor, rate, channels, start, frames, buffer)
  assert(frames * channels <= buffer.size, "buffer too small")
  for i = 0, frames - 1 do
    local t = start + i / rate
    for c = 1, channels do
      buffer.values[i * channels + c] = (c == 1 and 1 or -1) * t / 100
    end
  end
  return 1
end

-- The script's window ----------------------------------------------------------------------------

gfx = { w = 420, h = 60, x = 0, y = 0 }
function gfx.init() record.window_opened = true end
function gfx.getchar() return 0 end
function gfx.set() end
function gfx.rect() end
function gfx.setfont() end
function gfx.drawstr(text)
  if record.progress[#record.progress] ~= text then record.progress[#record.progress + 1] = text end
end
function gfx.update() end
function gfx.quit() record.window_closed = true end

function reaper.InsertMedia(path, mode)
  local insert = {
    path = path, mode = mode, cursor = cursor, track = track_index(selected_track),
    undo_depth = undo_depth, item_values = {}, take_values = {},
  }
  record.inserts[#record.inserts + 1] = insert
  local item = make_item({ path = path, position = cursor, track = track_index(selected_track) })
  item.inserted = insert
  selected_items = { item }
  return 1
end

-- Running --------------------------------------------------------------------------------------

local function feed_log()
  if not background or not background.log then
    return
  end
  local replies = scenario.replies or {}
  local line
  if background.next <= #replies then
    line = replies[background.next]
  elseif background.next == #replies + 1 then
    line = "samuel-exit " .. tostring(scenario.exit_code or 0)
  end
  background.next = background.next + 1
  if line then
    local f = assert(io.open(background.log, "ab"))
    f:write(line .. "\n")
    f:close()
  end
end

local function run_deferred()
  while #queue > 0 and record.defer_ticks < 10000 do
    record.defer_ticks = record.defer_ticks + 1
    feed_log()
    local due = queue
    queue = {}
    for _, fn in ipairs(due) do
      fn()
    end
  end
end

local ok, err = pcall(function()
  dofile(script)
  run_deferred()
end)
if not ok then
  record.error = tostring(err)
end
record.extstate = extstate
record.undo_depth = undo_depth
record.track_names = {}
for i, t in ipairs(tracks) do
  record.track_names[i] = t.P_NAME or t.name
end

-- JSON out -------------------------------------------------------------------------------------

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function encode(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    if is_array(value) then
      for _, v in ipairs(value) do parts[#parts + 1] = encode(v) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(value) do
      parts[#parts + 1] = encode(tostring(k)) .. ":" .. encode(v)
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif kind == "number" or kind == "boolean" then
    return tostring(value)
  end
  return "null"
end

io.write(encode(record), "\n")

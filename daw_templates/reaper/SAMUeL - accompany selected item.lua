-- SAMUeL - accompany selected item
-- Sends the selected item to the samuel-live engine (/samuel/generate with a file:PATH source),
-- waits in the background (reaper.defer, progress in a small window) and puts the
-- accompaniment on a new track below the item, and its MIDI file on a track below that,
-- aligned with the item: one undo step.
-- Without a time selection the item's whole source file is sent (the OSC request has no time
-- range); the result lines up with the source from its start, so the new items show the same
-- window of it as the vocal item does. With a time selection that overlaps the item, only that
-- part of the take is cut into a WAV file (samuel_cut.lua) and sent, and the results cover
-- exactly the selection.

local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local samuel = dofile(dir .. "samuel_common.lua")
local cut = dofile(dir .. "samuel_cut.lua")

local function selected_vocal()
  local item = reaper.GetSelectedMediaItem(0, 0)
  if not item then
    return nil, "Select the media item that holds the vocal first."
  end
  local take = reaper.GetActiveTake(item)
  if not take or reaper.TakeIsMIDI(take) then
    return nil, "The selected item has no audio take."
  end
  local path = reaper.GetMediaSourceFileName(reaper.GetMediaItemTake_Source(take), "")
  if path == nil or path == "" then
    return nil, "The selected item's source has no file on disk (render or glue it first)."
  end
  return {
    take = take,
    path = path,
    position = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
    length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
    offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
    playrate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
    track = reaper.GetMediaTrackInfo_Value(reaper.GetMediaItem_Track(item), "IP_TRACKNUMBER") - 1,
  }
end

--- Where a selection cut goes: the "cut_dir" setting, else <resource>/SAMUeL/cuts.
local function cut_path(stem)
  local folder = samuel.setting("cut_dir")
  if folder == "" then
    folder = samuel.work_dir() .. "/cuts"
  end
  reaper.RecursiveCreateDirectory(folder, 0)
  local name = samuel.output_name(stem):match("([^/]+)$"):gsub("%-accomp%-", "-selection-")
  return folder .. "/" .. name
end

--- The file to send and where its results go: { path, position, trim } (trim nil = none).
local function request_for(vocal)
  local window = cut.selection_window(vocal.position, vocal.length)
  if not window then
    return { path = vocal.path, position = vocal.position, trim = {
      offset = vocal.offset, length = vocal.length, playrate = vocal.playrate } }
  end
  local path = cut_path(vocal.path:match("([^/\\]+)$"))
  local ok, problem = cut.write_take_window(vocal.take, window.offset, window.length, path)
  if not ok then
    return nil, problem
  end
  return { path = path, position = vocal.position + window.offset, trim = {
    offset = 0, length = window.length, playrate = 1 } }
end

local function main()
  local vocal, problem = selected_vocal()
  if not vocal then
    samuel.error(problem)
    return
  end
  local request, cut_problem = request_for(vocal)
  if not request then
    samuel.error("SAMUeL: " .. cut_problem)
    return
  end
  local stem = vocal.path:match("([^/\\]+)$")
  local args = samuel.generate_args("file:" .. request.path, samuel.output_name(stem))
  local log = samuel.start(samuel.send_command("/samuel/generate", args), "accompany")
  if not log then
    return
  end
  samuel.wait(log, function(state)
    samuel.insert_result(state.done, request.position, vocal.track, request.trim)
  end)
end

main()

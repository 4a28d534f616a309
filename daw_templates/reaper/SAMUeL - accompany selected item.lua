-- SAMUeL - accompany selected item
-- Sends the selected item's source file to the samuel-live engine (/samuel/generate with a
-- file:PATH source), waits in the background (reaper.defer) and puts the accompaniment on a new
-- track below, aligned with the item: same position, same window into the source, one undo step.
-- The engine reads the whole source file (the OSC request has no time range), so the result
-- lines up with the source from its start; the new item shows the same part the vocal item does.

local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local samuel = dofile(dir .. "samuel_common.lua")

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
    path = path,
    position = reaper.GetMediaItemInfo_Value(item, "D_POSITION"),
    length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
    offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
    playrate = reaper.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
    track = reaper.GetMediaTrackInfo_Value(reaper.GetMediaItem_Track(item), "IP_TRACKNUMBER") - 1,
  }
end

local function main()
  local vocal, problem = selected_vocal()
  if not vocal then
    samuel.error(problem)
    return
  end
  local stem = vocal.path:match("([^/\\]+)$")
  local args = samuel.generate_args("file:" .. vocal.path, samuel.output_name(stem))
  local log = samuel.start(samuel.send_command("/samuel/generate", args), "accompany")
  if not log then
    return
  end
  samuel.wait(log, function(state)
    samuel.insert_result(state.done.path, vocal.position, vocal.track, {
      offset = vocal.offset, length = vocal.length, playrate = vocal.playrate,
    })
  end)
end

main()

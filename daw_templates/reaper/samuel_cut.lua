-- SAMUeL for REAPER: the part of a take inside the time selection, written as a WAV file
-- (loaded with dofile by "SAMUeL - accompany selected item").
--
-- The OSC request takes a whole file (no start/length), so a time selection is sent by cutting
-- it out first: the take is read through an audio accessor (the take's own audio, before FX,
-- with its start offset and play rate applied) and written as 32-bit float WAV into the
-- "Folder for selection cuts" setting, which must be one of the engine's allowed input folders.

local M = {}

local BLOCK = 4096 -- frames read per GetAudioAccessorSamples call

--- The time selection clipped to the item: start (seconds from the item's start) and length,
--- or nil when there is no selection or it does not overlap the item.
function M.selection_window(position, length)
  local first, last = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  local from, to = math.max(first, position), math.min(last, position + length)
  if last <= first or to - from < 0.01 then
    return nil
  end
  return { offset = from - position, length = to - from }
end

local function wav_header(rate, channels, frames)
  local bytes = frames * channels * 4
  return "RIFF" .. string.pack("<I4", 36 + bytes) .. "WAVE"
    .. "fmt " .. string.pack("<I4I2I2I4I4I2I2", 16, 3, channels, rate, rate * channels * 4,
      channels * 4, 32)
    .. "data" .. string.pack("<I4", bytes)
end

--- Write the take's audio from OFFSET (seconds from the item's start) for LENGTH seconds to
--- PATH. Returns true, or nil and a message.
function M.write_take_window(take, offset, length, path)
  local source = reaper.GetMediaItemTake_Source(take)
  local rate = math.floor(reaper.GetMediaSourceSampleRate(source) + 0.5)
  if rate <= 0 then
    rate = 48000
  end
  local channels = math.max(1, math.min(2, reaper.GetMediaSourceNumChannels(source)))
  local frames = math.floor(length * rate + 0.5)
  local f, err = io.open(path, "wb")
  if not f then
    return nil, "cannot write " .. path .. ": " .. tostring(err)
  end
  f:write(wav_header(rate, channels, frames))
  local accessor = reaper.CreateTakeAudioAccessor(take)
  local buffer = reaper.new_array(BLOCK * channels)
  local done = 0
  while done < frames do
    local n = math.min(BLOCK, frames - done)
    reaper.GetAudioAccessorSamples(accessor, rate, channels, offset + done / rate, n, buffer)
    local values = buffer.table()
    f:write(string.pack("<" .. string.rep("f", n * channels), table.unpack(values, 1,
      n * channels)))
    done = done + n
  end
  reaper.DestroyAudioAccessor(accessor)
  f:close()
  return true
end

return M

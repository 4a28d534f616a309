-- SAMUeL - cancel
-- Cancels the job started by "SAMUeL - accompany selected item" or "... generate from live
-- capture" (its id is kept in ExtState SAMUeL/job while it runs) with /samuel/cancel JOB.

local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local samuel = dofile(dir .. "samuel_common.lua")

local function main()
  local job = reaper.GetExtState(samuel.EXT, "job")
  if job == nil or job == "" then
    samuel.error("No SAMUeL job is running.")
    return
  end
  local output = samuel.run(samuel.send_command("/samuel/cancel", { job }), "cancel", 15000)
  local state = samuel.parse_output(output)
  if not state.cancel_reply then
    samuel.error(samuel.describe_failure(state))
  elseif state.cancel_reply.cancelled == 0 then
    samuel.error("Job " .. job .. " had already ended.")
  end
end

main()

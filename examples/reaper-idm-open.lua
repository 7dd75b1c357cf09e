-- REAPER ReaScript (Lua): send the selected item's audio file to a running idm-host OSC server.
--
-- The server analyses the file and writes stems, onsets and transcription.mid into its --out folder;
-- its replies (/idm/hit, /idm/stems, /idm/midi, /idm/done) go to --reply-port, where a tool such as
-- oscdump, a plug-in or a Pd patch can listen. REAPER's Lua has no sockets, so this script runs
-- liblo's `oscsend` (Linux: apt install liblo-tools; macOS: brew install liblo). Set OSCSEND below
-- to its full path if REAPER does not find it on PATH.
--
-- Not tested inside REAPER by the idm-host test suite (REAPER is not available on its CI machines);
-- the OSC request it sends, `/idm/open is <id> <path>`, is tested with oscsend in
-- tests/io/test_osc_liblo.py.

local HOST = "127.0.0.1"
local PORT = 9000             -- idm-host serve --port
local OSCSEND = "oscsend"     -- or e.g. "/usr/local/bin/oscsend"

local function shell_quote(s)
  if reaper.GetOS():match("^Win") then
    return '"' .. s:gsub('"', '\\"') .. '"'
  end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local item = reaper.GetSelectedMediaItem(0, 0)
if not item then
  reaper.MB("Select an audio item first.", "idm-host", 0)
  return
end
local take = reaper.GetActiveTake(item)
if not take or reaper.TakeIsMIDI(take) then
  reaper.MB("The selected item has no audio take.", "idm-host", 0)
  return
end
local source = reaper.GetMediaItemTake_Source(take)
local path = reaper.GetMediaSourceFileName(source, "")
if path == nil or path == "" then
  reaper.MB("The selected item's source has no file (is it a section or a reversed copy?).", "idm-host", 0)
  return
end

-- a job id the replies will carry: seconds since midnight keeps it in int32 range
local id = math.floor(reaper.time_precise() % 86400 * 1000) % 2147483647
local cmd = table.concat({OSCSEND, HOST, tostring(PORT), "/idm/open", "is", tostring(id), shell_quote(path)}, " ")
local out = reaper.ExecProcess(cmd, 5000)
if out == nil then
  reaper.MB("Could not run: " .. cmd, "idm-host", 0)
  return
end
local code = tonumber(out:match("^(%-?%d+)"))
if code ~= 0 then
  reaper.MB("oscsend failed (" .. tostring(code) .. "):\n" .. out, "idm-host", 0)
  return
end
reaper.ShowConsoleMsg(string.format("idm-host: sent %s as job %d to %s:%d\n", path, id, HOST, PORT))

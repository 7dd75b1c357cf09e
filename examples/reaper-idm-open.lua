-- REAPER ReaScript (Lua): send the selected item's audio file to a running idm-host OSC server.
--
-- The server analyses the file and writes stems, onsets and transcription.mid into its --out folder;
-- its replies (/idm/hit, /idm/stems, /idm/midi, /idm/done) go to --reply-port, where a tool such as
-- oscdump, a plug-in or a Pd patch can listen. REAPER's Lua has no sockets, so this script runs
-- liblo's `oscsend` (Linux: apt install liblo-tools; macOS: brew install liblo). Set OSCSEND below
-- to its full path if REAPER does not find it on PATH.
--
-- Not tested inside REAPER by the idm-host test suite (REAPER is not available on its CI machines);
-- tests/plugin/test_daw_scripts.py runs this file in a stock Lua 5.4 with a stand-in for REAPER's
-- API and real oscsend against a real server, with paths holding spaces, ' and ".

local HOST = "127.0.0.1"
local PORT = 9000             -- idm-host serve --port
local OSCSEND = "oscsend"     -- or e.g. "/usr/local/bin/oscsend"

-- Run a program with arguments and return its exit code and output.
-- POSIX: through the shell (io.popen), every argument in single quotes, a ' inside written as '\''
-- so no character of a path is special. REAPER's ExecProcess is not used there: it runs no
-- shell and splits the command line by its own rules, which shell quoting does not survive.
-- Windows: ExecProcess with double-quoted arguments (a Windows path cannot contain ").
local function run(args)
  if reaper.GetOS():match("^Win") then
    local quoted = {}
    for i, a in ipairs(args) do
      if a:find('"', 1, true) then return nil, "argument contains a double quote: " .. a end
      quoted[i] = '"' .. a .. '"'
    end
    local out = reaper.ExecProcess(table.concat(quoted, " "), 5000)
    if out == nil then return nil, "could not run " .. args[1] end
    return tonumber(out:match("^(%-?%d+)")), (out:gsub("^%-?%d+\r?\n", ""))
  end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = "'" .. (a:gsub("'", "'\\''")) .. "'" end
  local pipe = io.popen(table.concat(quoted, " ") .. " 2>&1", "r")
  if pipe == nil then return nil, "could not start a shell" end
  local out = pipe:read("a") or ""
  local ok, how, code = pipe:close()
  if how == "exit" then return code, out end
  return nil, out .. " (killed by signal " .. tostring(code) .. ")"
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
local code, out = run({OSCSEND, HOST, tostring(PORT), "/idm/open", "is", tostring(id), path})
if code == nil then
  reaper.MB("Could not run " .. OSCSEND .. ": " .. tostring(out), "idm-host", 0)
  return
end
if code ~= 0 then
  reaper.MB(OSCSEND .. " failed (exit " .. tostring(code) .. "):\n" .. out, "idm-host", 0)
  return
end
-- UDP has no receipt: oscsend only says the request left this machine's network stack
reaper.ShowConsoleMsg(string.format("idm-host: asked %s:%d to analyse %s (job %d); the server's replies, "
  .. "or its /idm/error if it cannot read the file, go to its --reply-port\n", HOST, PORT, path, id))

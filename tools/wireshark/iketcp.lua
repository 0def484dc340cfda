-- iketcp.lua: Wireshark dissector for IKE and ESP carried in a TCP stream (RFC 9329, which obsoletes RFC 8229).
--
-- Wireshark's own "tcpencap" is Cisco's older TCP encapsulation; this one is the IETF framing:
--
--   originator -> responder:  "IKETCP" (6 bytes, once, RFC 9329 section 3.1) then frames
--   responder -> originator:  frames only
--
--   frame (RFC 9329 section 3):
--    0                   1                   2                   3
--    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
--   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
--   |            Length             |     Non-ESP Marker (0) ...    |   IKE: marker then the IKE message
--   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
--   |            Length             |          SPI (!= 0) ...       |   ESP: the ESP packet, SPI first
--   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
--   |        Length = 3             |     0xFF      |                   NAT-keepalive (RFC 3948 section 2.3)
--   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
--
-- The length counts its own two bytes, so 0 and 1 are malformed and framing is lost after them.
-- Frames span TCP segments and several share one segment: we ask TCP for desegmentation.
--
-- Use: tshark -X lua_script:tools/wireshark/iketcp.lua -r cap.pcap, or copy into a Lua plugin directory.
-- Claims TCP ports 4500, 443, 11443 (preference "iketcp.ports") and, on any other port, streams that
-- start with "IKETCP" (heuristic). On a claimed port, a stream whose originator does not send the prefix
-- is handed back to the dissector that owned the port before (TLS on 443).

local PREFIX = "IKETCP"
local DEFAULT_PORTS = "443,4500,11443"

local KIND_IKE, KIND_ESP, KIND_KEEPALIVE, KIND_MALFORMED = 1, 2, 3, 4
local kind_names = {
	[KIND_IKE] = "IKE",
	[KIND_ESP] = "ESP",
	[KIND_KEEPALIVE] = "Keepalive",
	[KIND_MALFORMED] = "Malformed",
}

local iketcp = Proto("iketcp", "IKE and ESP over TCP (RFC 9329)")

local hf = {
	prefix = ProtoField.string("iketcp.prefix", "Stream prefix"),
	length = ProtoField.uint16("iketcp.length", "Length", base.DEC, nil, nil,
		"frame length, including these two bytes"),
	marker = ProtoField.uint32("iketcp.marker", "Non-ESP marker", base.HEX),
	kind = ProtoField.uint8("iketcp.kind", "Kind", base.DEC, kind_names),
	spi = ProtoField.uint32("iketcp.spi", "ESP SPI", base.HEX),
	keepalive = ProtoField.uint8("iketcp.keepalive", "NAT-keepalive", base.HEX),
	data = ProtoField.bytes("iketcp.data", "Undecodable data"),
}
iketcp.fields = { hf.prefix, hf.length, hf.marker, hf.kind, hf.spi, hf.keepalive, hf.data }

local ef = {
	bad_length = ProtoExpert.new("iketcp.bad_length", "Frame length below 2 (the length counts itself)",
		expert.group.MALFORMED, expert.severity.ERROR),
	short = ProtoExpert.new("iketcp.short", "Frame too short for a non-ESP marker or an SPI",
		expert.group.MALFORMED, expert.severity.ERROR),
	short_esp = ProtoExpert.new("iketcp.short_esp", "ESP packet shorter than SPI and sequence number",
		expert.group.MALFORMED, expert.severity.ERROR),
	sub_error = ProtoExpert.new("iketcp.subdissector_error", "Sub-dissector failed on this frame",
		expert.group.MALFORMED, expert.severity.ERROR),
	empty_ike = ProtoExpert.new("iketcp.empty_ike", "Non-ESP marker without an IKE message",
		expert.group.MALFORMED, expert.severity.ERROR),
	lost = ProtoExpert.new("iketcp.framing_lost", "Framing lost after a malformed length",
		expert.group.SEQUENCE, expert.severity.WARN),
	keepalive = ProtoExpert.new("iketcp.keepalive.expert", "NAT-keepalive",
		expert.group.SEQUENCE, expert.severity.CHAT),
}
iketcp.experts = { ef.bad_length, ef.short, ef.short_esp, ef.sub_error, ef.empty_ike, ef.lost, ef.keepalive }

iketcp.prefs.ports = Pref.range("TCP ports", DEFAULT_PORTS,
	"TCP ports decoded as IKE/ESP over TCP; streams starting with IKETCP are found on any port", 65535)

local f_tcp_stream = Field.new("tcp.stream")
local f_tcp_seq = Field.new("tcp.seq")

local isakmp_handle = Dissector.get("isakmp")
local esp_handle = Dissector.get("esp")
local tcp_port_table = DissectorTable.get("tcp.port")

-- Per TCP stream state, rebuilt on every (re)load of a capture:
--   streams[stream] = { verdict = nil | "iketcp" | "other", dirs = { [srcaddr/port] = dir } }
--   dir = { started = true once its first byte was seen, prefix_at = frame holding the prefix,
--           lost_at = frame after which framing is lost }
-- Frame numbers, not booleans, so that the second pass (and the GUI) decides exactly like the first.
local streams = {}

function iketcp.init()
	streams = {}
end

local function last(...)
	local v = { ... }
	return v[#v]
end

local function stream_state(pinfo)
	local fi = last(f_tcp_stream())
	local id = fi and fi.value or -1
	local st = streams[id]
	if not st then
		st = { dirs = {} }
		streams[id] = st
	end
	local key = tostring(pinfo.src) .. "/" .. pinfo.src_port
	local d = st.dirs[key]
	if not d then
		d = {}
		st.dirs[key] = d
	end
	return st, d
end

-- Does tvb start with (a piece of) the prefix?  Returns "yes", "partial" or "no".
local function match_prefix(tvb)
	local n = math.min(tvb:len(), #PREFIX)
	if n == 0 or tvb:raw(0, n) ~= PREFIX:sub(1, n) then
		return "no"
	end
	return n == #PREFIX and "yes" or "partial"
end

-- The dissectors that owned our ports before us, to hand back non-IKETCP streams (TLS on 443).
local previous = {}
local registered = nil

-- Calls fn(port) for each port of a range preference string ("443,4500,11000-11010").
local function each_port(ports, fn)
	for r in string.gmatch(ports, "[^,%s]+") do
		local lo, hi = r:match("^(%d+)-(%d+)$")
		lo = tonumber(lo or r)
		hi = tonumber(hi or r)
		if lo and hi then
			for p = lo, math.min(hi, 65535) do
				fn(p)
			end
		end
	end
end

local function register_ports(ports)
	if registered then
		tcp_port_table:remove(registered, iketcp)
		each_port(registered, function(p)
			if previous[p] then
				tcp_port_table:add(p, previous[p])
			end
		end)
	end
	each_port(ports, function(p)
		if previous[p] == nil then
			local h = tcp_port_table:get_dissector(p)
			previous[p] = (h and tostring(h) ~= "iketcp") and h or false
		end
	end)
	if ports ~= "" then
		tcp_port_table:add(ports, iketcp)
	end
	registered = ports ~= "" and ports or nil
end

function iketcp.prefs_changed()
	if iketcp.prefs.ports ~= registered then
		register_ports(iketcp.prefs.ports)
	end
end

-- A sub-dissector's exception must not cost the frames after this one in the same segment.
local function call_sub(handle, tvb, pinfo, tree, item)
	local ok, err = pcall(handle.call, handle, tvb, pinfo, tree)
	if not ok then
		item:add_proto_expert_info(ef.sub_error, "Sub-dissector failed: " .. tostring(err))
	end
end

-- Dissect one complete frame (length included) at tvb; returns the info-column summary for
-- kinds that no sub-dissector names.
local function dissect_frame(tvb, pinfo, tree)
	local flen = tvb:len()
	local item = tree:add(iketcp, tvb())
	item:add(hf.length, tvb(0, 2))
	local plen = flen - 2

	if plen == 1 and tvb(2, 1):uint() == 0xff then
		item:add(hf.kind, KIND_KEEPALIVE):set_generated()
		item:add(hf.keepalive, tvb(2, 1))
		item:add_proto_expert_info(ef.keepalive)
		item:append_text(", NAT-keepalive")
		return "NAT-keepalive"
	end
	if plen < 4 then
		item:add(hf.kind, KIND_MALFORMED):set_generated()
		if plen > 0 then
			item:add(hf.data, tvb(2))
		end
		item:add_proto_expert_info(ef.short)
		item:append_text(", malformed")
		return "Malformed frame"
	end

	local first = tvb(2, 4):uint()
	if first == 0 then
		item:add(hf.kind, KIND_IKE):set_generated()
		item:add(hf.marker, tvb(2, 4))
		item:append_text(", IKE")
		if plen == 4 then
			item:add_proto_expert_info(ef.empty_ike)
			return "Malformed frame (empty IKE)"
		end
		item:set_len(6)
		call_sub(isakmp_handle, tvb(6):tvb(), pinfo, tree, item)
		return nil
	end

	item:add(hf.kind, KIND_ESP):set_generated()
	item:add(hf.spi, tvb(2, 4))
	item:append_text(string.format(", ESP SPI 0x%08x", first))
	if plen < 8 then
		-- RFC 4303 section 2: SPI and sequence number are mandatory.
		item:add(hf.data, tvb(6))
		item:add_proto_expert_info(ef.short_esp)
		return "Malformed frame (short ESP)"
	end
	item:set_len(2)
	call_sub(esp_handle, tvb(2):tvb(), pinfo, tree, item)
	return nil
end

-- Summaries are separated by ", " with a fence so each sub-dissector writes after the previous one.
local function info_next(pinfo)
	if tostring(pinfo.cols.info) ~= "" then
		pinfo.cols.info:append(", ")
		pinfo.cols.info:fence()
	end
end

local function dissect_stream(tvb, pinfo, tree, st, d)
	local len = tvb:len()
	local off = 0

	pinfo.cols.protocol = "IKETCP"
	pinfo.cols.info = ""

	if not pinfo.visited and not d.started then
		local m = match_prefix(tvb)
		if m == "partial" then
			pinfo.desegment_offset = 0
			pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
			return len
		end
		d.started = true
		if m == "yes" then
			d.prefix_at = pinfo.number
			st.verdict = "iketcp"
		end
	end

	if d.lost_at and pinfo.number > d.lost_at then
		local item = tree:add(iketcp, tvb())
		item:add(hf.data, tvb())
		item:add_proto_expert_info(ef.lost)
		pinfo.cols.info = "Continuation (framing lost)"
		return len
	end

	if d.prefix_at == pinfo.number and match_prefix(tvb) == "yes" then
		local item = tree:add(iketcp, tvb(0, #PREFIX))
		item:add(hf.prefix, tvb(0, #PREFIX))
		item:append_text(", stream prefix")
		pinfo.cols.info:append("IKETCP prefix")
		off = #PREFIX
	end

	while off < len do
		local left = len - off
		if left < 2 then
			pinfo.desegment_offset = off
			pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
			break
		end
		local flen = tvb(off, 2):uint()
		if flen < 2 then
			local item = tree:add(iketcp, tvb(off))
			item:add(hf.length, tvb(off, 2)):add_proto_expert_info(ef.bad_length)
			item:add(hf.kind, KIND_MALFORMED):set_generated()
			if left > 2 then
				item:add(hf.data, tvb(off + 2))
			end
			item:append_text(", malformed length " .. flen)
			info_next(pinfo)
			pinfo.cols.info:append("Malformed length " .. flen)
			if not pinfo.visited then
				d.lost_at = pinfo.number
			end
			return len
		end
		if flen > left then
			pinfo.desegment_offset = off
			pinfo.desegment_len = flen - left
			break
		end
		info_next(pinfo)
		local summary = dissect_frame(tvb(off, flen):tvb(), pinfo, tree)
		if summary then
			pinfo.cols.info:append(summary)
		end
		off = off + flen
	end

	pinfo.cols.protocol = "IKETCP"
	return len
end

-- Registered-port entry point.
function iketcp.dissector(tvb, pinfo, tree)
	local st, d = stream_state(pinfo)
	if st.verdict == nil and not pinfo.visited and match_prefix(tvb) == "no" then
		-- The first bytes of the connection and no prefix: hand the stream back to the port's
		-- previous owner; a port without one (4500, 11443) is read as frames, e.g. a capture
		-- that missed the start of the connection.
		local h = previous[pinfo.match_uint] or previous[pinfo.dst_port] or previous[pinfo.src_port]
		st.verdict = h and "other" or "iketcp"
	end
	if st.verdict == "other" then
		local h = previous[pinfo.match_uint] or previous[pinfo.dst_port] or previous[pinfo.src_port]
		if h then
			return h:call(tvb, pinfo, tree)
		end
		return 0
	end
	return dissect_stream(tvb, pinfo, tree, st, d)
end

-- Heuristic entry point, any port: the stream must start with the prefix.
local function heuristic(tvb, pinfo, tree)
	local m = match_prefix(tvb)
	if m == "no" then
		return false
	end
	if m == "partial" then
		-- A piece of the prefix, believable only at the very start of the direction: ask for
		-- more bytes but claim nothing yet; the reassembled bytes come back through here.
		local seq = last(f_tcp_seq())
		if not seq or seq.value ~= 1 then
			return false
		end
		pinfo.desegment_offset = 0
		pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
		return true
	end
	local st, d = stream_state(pinfo)
	if d.started and d.prefix_at == nil then
		return false
	end
	st.verdict = "iketcp"
	pinfo.conversation = iketcp
	dissect_stream(tvb, pinfo, tree, st, d)
	return true
end

register_ports(DEFAULT_PORTS)
iketcp:register_heuristic("tcp", heuristic)

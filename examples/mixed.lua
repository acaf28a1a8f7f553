-- SPDX-License-Identifier: MIT
-- wrk script for examples/load.sh: requests of mixed sizes, as a server
-- sees them, drawn once from a seeded distribution, so every run sends
-- the same ones in the same order: 60% of 64 B to 512 B (a GET with a
-- header to make up the size), 30% of 512 B to 16 KiB and 10% of 16 KiB
-- to 60 KiB (a POST with a body), each size counting head and body. A
-- server's first buffer is 4 KiB, so about a third outgrow it.
local reqs = {}
local next_one = 0

local function sized(total)
	if total <= 512 then
		-- The head without the pad header is about 60 bytes.
		return wrk.format("GET", "/", {["X-Pad"] = string.rep("p", total - 60)})
	end
	return wrk.format("POST", "/", nil, string.rep("b", total - 80))
end

function init(args)
	math.randomseed(15)
	for i = 1, 256 do
		local r = math.random()
		local total
		if r < 0.6 then
			total = math.random(64, 512)
		elseif r < 0.9 then
			total = math.random(512, 16384)
		else
			total = math.random(16384, 61440)
		end
		reqs[i] = sized(math.max(total, 100))
	end
end

function request()
	next_one = next_one % #reqs + 1
	return reqs[next_one]
end

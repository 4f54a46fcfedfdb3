# frozen_string_literal: true

# In-process benchmark: one Ruby process, one Redis, the four stores of
# stores.rb behind the same ActionDispatch stack, driven by Rack::MockRequest
# (no HTTP, no server: what is measured is the session machinery and the
# store's Redis traffic). Blocks of K requests alternate between the stores
# and between the two request kinds, so machine noise hits every case alike:
#
#   read   GET /read: the session is loaded, one key read, nothing changed
#   write  GET /write: the session's "counter" incremented
#
# Per case and kind: req/s, process CPU per request (CLOCK_PROCESS_CPUTIME_ID:
# every thread of this process, so the engine's runtime threads count for
# ours), p50/p99 latency, Redis server CPU per request and Redis commands per
# request (INFO commandstats delta, which also counts commands run inside a
# Lua script), then a MONITOR sample for the commands a client actually sends
# (script-internal ones excluded). Correctness is checked: the counter ends
# at warm-up + timed writes in every case.
#
# Usage (scripts/bench-ruby.sh does this): SK_REDIS_URL=redis://127.0.0.1:port ruby bench/ruby/inproc.rb
# Knobs: ROUNDS (3), BLOCKS (10), K (300 requests per block), WARMUP (300), CASES (all).
require "socket"
require "uri"
require_relative "stores"

module SkBench
  class Client
    attr_reader :cookie

    def initialize(app)
      @app = app
      @cookie = nil
    end

    def get(path)
      env = ::Rack::MockRequest.env_for(path)
      env["HTTP_COOKIE"] = "#{COOKIE}=#{@cookie}" if @cookie
      status, headers, body = @app.call(env)
      text = +""
      body.each { |chunk| text << chunk }
      body.close if body.respond_to?(:close)
      raise "#{path}: HTTP #{status}" unless status == 200

      set_cookie = headers["Set-Cookie"]
      if set_cookie && (m = set_cookie.match(/(?:\A|\n)#{COOKIE}=([^;\n]*)/))
        @cookie = m[1]
      end
      text
    end
  end

  class InProc
    KINDS = %w[read write].freeze

    def initialize(url)
      @url = url
      @rounds = Integer(ENV.fetch("ROUNDS", 3))
      @blocks = Integer(ENV.fetch("BLOCKS", 10))
      @k = Integer(ENV.fetch("K", 300))
      @warmup = Integer(ENV.fetch("WARMUP", 300))
      @cases = ENV.fetch("CASES", CASES.join(",")).split(",")
      @info = Redis.new(url: url)
    end

    def run
      results = (1..@rounds).map { |round| run_round(round) }
      monitor = @cases.to_h { |name| [name, monitor_sample(name)] }
      { "rounds" => results, "monitor" => monitor, "params" => params }
    end

    def params
      { "rounds" => @rounds, "blocks" => @blocks, "k" => @k, "warmup" => @warmup, "ruby" => RUBY_VERSION,
        "rails" => ActionPack::VERSION::STRING, "redis_rb" => Redis::VERSION,
        "redis_server" => @info.info["redis_version"] }
    end

    def run_round(round)
      load_before = SkBench.loadavg
      clients = @cases.to_h do |name|
        client = Client.new(SkBench.app(name, @url, "#{Process.pid}:#{round}"))
        client.get("/login")
        [name, client]
      end
      @warmup.times { clients.each_value { |c| c.get("/read") && c.get("/write") } }
      stats = Hash.new { |h, key| h[key] = { n: 0, wall: 0.0, cpu: 0.0, lat: [], cmds: Hash.new(0), server_cpu: 0.0 } }
      @blocks.times do |block|
        kinds = block.even? ? KINDS : KINDS.reverse
        kinds.each do |kind|
          @cases.rotate(block % @cases.size).each do |name|
            measure(clients[name], kind, stats[[name, kind]])
          end
        end
      end
      check_counters(clients)
      out = { "round" => round, "load_before" => load_before, "load_after" => SkBench.loadavg, "cases" => {} }
      stats.each do |(name, kind), s|
        lat = s[:lat].sort
        (out["cases"][name] ||= {})[kind] = {
          "req_s" => s[:n] / s[:wall],
          "cpu_us" => s[:cpu] / s[:n] * 1e6,
          "p50_us" => lat[lat.size / 2],
          "p99_us" => lat[(lat.size * 0.99).floor],
          "server_cpu_us" => s[:server_cpu] / s[:n] * 1e6,
          "redis_cmds" => s[:cmds].transform_values { |v| v.to_f / s[:n] }.reject { |_, v| v.zero? }
        }
      end
      warn "round #{round}: load #{load_before} -> #{out['load_after']}"
      out
    end

    def measure(client, kind, acc)
      path = "/#{kind}"
      cmds_before = commandstats
      cpu_server_before = server_cpu
      lat = acc[:lat]
      cpu0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
      t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      @k.times do
        a = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        client.get(path)
        lat << (Process.clock_gettime(Process::CLOCK_MONOTONIC) - a) * 1e6
      end
      acc[:wall] += Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
      acc[:cpu] += Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu0
      acc[:n] += @k
      acc[:server_cpu] += server_cpu - cpu_server_before
      commandstats.each { |cmd, calls| acc[:cmds][cmd] += calls - cmds_before.fetch(cmd, 0) }
    end

    # Every case's counter must be exactly warm-up + timed writes: a store
    # that lost or skipped a write would look faster than it is.
    def check_counters(clients)
      expected = @warmup + @blocks * @k
      clients.each do |name, client|
        got = JSON.parse(client.get("/dump"))["counter"]
        raise "#{name}: counter is #{got.inspect}, expected #{expected}" unless got == expected
        raise "#{name}: /read returned the wrong user" unless client.get("/read") == "42"
      end
    end

    # name => calls, without the INFO calls this harness makes.
    def commandstats
      @info.info("commandstats").each_with_object({}) do |(cmd, v), out|
        next if cmd.start_with?("info")

        out[cmd] = Integer(v["calls"])
      end
    end

    def server_cpu
      cpu = @info.info("cpu")
      Float(cpu["used_cpu_user"]) + Float(cpu["used_cpu_sys"])
    end

    # Commands each request sends, read from MONITOR (which marks commands run
    # by a Lua script as "[<db> lua]": those are not round trips).
    def monitor_sample(name, n = 50)
      client = Client.new(SkBench.app(name, @url, "#{Process.pid}:monitor"))
      client.get("/login")
      uri = URI(@url)
      KINDS.to_h do |kind|
        client.get("/#{kind}") # the first one may load scripts
        sock = TCPSocket.new(uri.host, uri.port)
        sock.write("MONITOR\r\n")
        sock.gets
        lines = Queue.new
        reader = Thread.new do
          while (line = sock.gets)
            lines << line
          end
        rescue IOError, SystemCallError
          nil
        end
        n.times { client.get("/#{kind}") }
        sleep 0.3
        sock.close
        reader.join
        sent = Hash.new(0)
        scripted = Hash.new(0)
        until lines.empty?
          line = lines.pop
          cmd = line[/\] "([^"]+)"/, 1]&.downcase or next
          line.include?(" lua] ") ? scripted[cmd] += 1 : sent[cmd] += 1
        end
        [kind, { "sent" => sent.transform_values { |v| v.to_f / n }, "in_lua" => scripted.transform_values { |v| v.to_f / n } }]
      end
    end
  end

  module Report
    module_function

    def median(values)
      v = values.compact.sort
      return nil if v.empty?

      v.size.odd? ? v[v.size / 2] : (v[v.size / 2 - 1] + v[v.size / 2]) / 2.0
    end

    def fmt(value, digits = 0)
      return "–" if value.nil?

      digits.zero? ? value.round.to_s : format("%.#{digits}f", value)
    end

    def cmds(hash)
      return "0" if hash.nil? || hash.empty?

      hash.sort_by { |k, v| [-v, k] }.map { |k, v| "#{k} #{fmt(v, 2)}" }.join(", ")
    end

    # Per-round ratios, then the median over rounds of every number.
    def inproc(result)
      rounds = result["rounds"]
      lines = []
      lines << "Rounds: #{rounds.size}; per round #{result['params']['blocks']} blocks x " \
               "#{result['params']['k']} requests per case and kind, after #{result['params']['warmup']} warm-up. " \
               "Load average (1/5/15 min) per round: " +
               rounds.map { |r| "#{r['load_before']} -> #{r['load_after']}" }.join("; ")
      lines << ""
      lines << "| kind | case | req/s | vs best Redis peer | vs cache_mem | CPU µs/req | CPU vs redis_store | " \
               "p50 µs | p99 µs | Redis CPU µs/req | commandstats/req (incl. inside Lua) | sent by the client/req (MONITOR) |"
      lines << "|---|---|---|---|---|---|---|---|---|---|---|---|"
      cases = rounds.first["cases"].keys
      %w[read write].each do |kind|
        cases.each do |name|
          per = rounds.map { |r| r["cases"][name][kind] }
          best_peer = lambda do |r|
            REDIS_CASES.map { |p| r["cases"].dig(p, kind, "req_s") }.compact.max
          end
          vs_peer = rounds.map { |r| (bp = best_peer.call(r)) && r["cases"][name][kind]["req_s"] / bp }
          vs_mem = rounds.map { |r| (m = r["cases"].dig("cache_mem", kind, "req_s")) && r["cases"][name][kind]["req_s"] / m }
          cpu_vs = rounds.map { |r| (c = r["cases"].dig("redis_store", kind, "cpu_us")) && r["cases"][name][kind]["cpu_us"] / c }
          mon = result.dig("monitor", name, kind)
          lines << "| #{kind} | #{name} | #{fmt(median(per.map { |p| p['req_s'] }))} | " \
                   "#{fmt(median(vs_peer), 2)}x | #{fmt(median(vs_mem), 2)}x | #{fmt(median(per.map { |p| p['cpu_us'] }))} | " \
                   "#{fmt(median(cpu_vs), 2)}x | #{fmt(median(per.map { |p| p['p50_us'] }))} | " \
                   "#{fmt(median(per.map { |p| p['p99_us'] }))} | #{fmt(median(per.map { |p| p['server_cpu_us'] }))} | " \
                   "#{cmds(per.last['redis_cmds'])} | #{mon ? cmds(mon['sent']) : '–'} |"
        end
      end
      lines << ""
      lines << "Per round (req/s read / write):"
      lines << ""
      lines << "| round | load | #{cases.join(' | ')} |"
      lines << "|---|---|#{cases.map { '---' }.join('|')}|"
      rounds.each do |r|
        cells = cases.map { |c| "#{fmt(r['cases'][c]['read']['req_s'])} / #{fmt(r['cases'][c]['write']['req_s'])}" }
        lines << "| #{r['round']} | #{r['load_before']} | #{cells.join(' | ')} |"
      end
      lines.join("\n")
    end
  end
end

if $PROGRAM_NAME == __FILE__
  url = SkBench.redis_url
  result = SkBench::InProc.new(url).run
  if (out = ENV["BENCH_JSON"])
    File.write(out, JSON.pretty_generate(result))
  end
  puts SkBench::Report.inproc(result)
end

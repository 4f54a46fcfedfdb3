# frozen_string_literal: true

# Puma benchmark: each store of stores.rb in Debian's Puma (one process,
# 8 threads) under wrk (-t8 -c8, one connection per wrk thread), every
# connection carrying the SAME session cookie:
#
#   read   GET /read for DUR seconds: req/s, p50/p99, Puma CPU per request
#   write  GET /incr?k=k<thread>: each connection increments its own key of
#          the one shared session. Afterwards the stored counters are
#          compared with the requests the app handled (counted under a
#          Mutex): the difference is the updates the store lost.
#
# Stores are taken in a rotated order in each round, one Puma at a time.
# Usage (scripts/bench-ruby.sh does this): SK_REDIS_URL=... ruby bench/ruby/puma_bench.rb
# Knobs: ROUNDS (3), DUR (6 seconds per wrk run), WARM (1), CASES (all), BENCH_PORT (17080).
require "json"
require "net/http"
require "open3"
require "tmpdir"
require "etc"

module SkBench
  CASES_ALL = %w[ours redis_store cache_redis cache_mem].freeze
  COOKIE_NAME = "_bench_session"

  class PumaBench
    def initialize(url)
      @url = url
      @rounds = Integer(ENV.fetch("ROUNDS", 3))
      @dur = Integer(ENV.fetch("DUR", 6))
      @warm = Integer(ENV.fetch("WARM", 1))
      @cases = ENV.fetch("CASES", CASES_ALL.join(",")).split(",")
      @port = Integer(ENV.fetch("BENCH_PORT", 17_080))
      @dir = __dir__
    end

    def run
      rounds = (1..@rounds).map do |round|
        load_before = loadavg
        cases = @cases.rotate(round - 1).to_h { |name| [name, run_case(name, round)] }
        warn "puma round #{round}: load #{load_before} -> #{loadavg}"
        { "round" => round, "load_before" => load_before, "load_after" => loadavg, "cases" => cases }
      end
      { "rounds" => rounds, "params" => { "dur" => @dur, "threads" => 8, "connections" => 8 } }
    end

    def loadavg
      File.read("/proc/loadavg").split.first(3).join(" ")
    end

    def run_case(name, round)
      pid = start_puma(name, "#{Process.pid}:puma:#{round}")
      res = get("/login")
      cookie = res["Set-Cookie"][/\A#{COOKIE_NAME}=[^;]+/] or raise "#{name}: no session cookie from /login"
      wrk("/read", cookie, @warm)
      cpu0 = cpu_seconds(pid)
      read = wrk("/read", cookie, @dur)
      read["cpu_us"] = (cpu_seconds(pid) - cpu0) / read["requests"] * 1e6
      cpu0 = cpu_seconds(pid)
      write = wrk("/", cookie, @dur, script: File.join(@dir, "incr.lua"))
      write["cpu_us"] = (cpu_seconds(pid) - cpu0) / write["requests"] * 1e6
      sleep 0.5 # requests still in flight when wrk stopped
      handled = JSON.parse(get("/handled").body)
      stored = JSON.parse(get("/dump", cookie).body)
      keys = handled.keys.grep(/\Ak\d+\z/)
      write["handled"] = keys.sum { |k| handled[k] }
      write["stored"] = keys.sum { |k| stored[k].to_i }
      write["lost"] = write["handled"] - write["stored"]
      write["per_key"] = keys.sort.to_h { |k| [k, [handled[k], stored[k]]] }
      warn format("  %-12s read %7.0f req/s  write %7.0f req/s  lost %d of %d", name, read["req_s"], write["req_s"],
                  write["lost"], write["handled"])
      { "read" => read, "write" => write }
    ensure
      stop_puma(pid) if pid
    end

    def start_puma(name, tag)
      env = { "STORE" => name, "BENCH_TAG" => tag, "BENCH_PORT" => @port.to_s }
      @log = File.join(Dir.tmpdir, "sk-bench-puma-#{Process.pid}.log")
      pid = Process.spawn(env, "puma", "-C", File.join(@dir, "puma.rb"), File.join(@dir, "config.ru"),
                          %i[out err] => @log, pgroup: true)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
      begin
        get("/read")
      rescue SystemCallError, IOError
        raise "puma (#{name}) did not start:\n#{File.read(@log)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.2
        retry
      end
      pid
    end

    def stop_puma(pid)
      Process.kill(:TERM, -pid)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
      sleep 0.1 until Process.wait(pid, Process::WNOHANG) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      begin
        Process.kill(:KILL, -pid)
        Process.wait(pid)
      rescue SystemCallError
        nil
      end
    end

    # utime + stime of the Puma process (all its threads), in seconds.
    def cpu_seconds(pid)
      fields = File.read("/proc/#{pid}/stat").split(") ", 2).last.split
      (Integer(fields[11]) + Integer(fields[12])) / Float(Etc.sysconf(Etc::SC_CLK_TCK))
    end

    def get(path, cookie = nil)
      http = Net::HTTP.new("127.0.0.1", @port)
      http.read_timeout = 10
      req = Net::HTTP::Get.new(path)
      req["Cookie"] = cookie if cookie
      res = http.request(req)
      raise "GET #{path}: HTTP #{res.code}" unless res.code == "200"

      res
    end

    def wrk(path, cookie, seconds, script: nil)
      cmd = ["wrk", "-t8", "-c8", "-d#{seconds}s", "--latency", "-H", "Cookie: #{cookie}"]
      cmd += ["-s", script] if script
      cmd << "http://127.0.0.1:#{@port}#{path}"
      out, status = Open3.capture2e(*cmd)
      raise "wrk failed: #{out}" unless status.success?

      requests = Integer(out[/(\d+) requests in/, 1])
      errors = out[/Non-2xx or 3xx responses: (\d+)/, 1].to_i + out[/Socket errors: .*/].to_s.scan(/\d+/).sum(&:to_i)
      { "req_s" => Float(out[/Requests\/sec:\s+([\d.]+)/, 1]), "requests" => requests, "errors" => errors,
        "p50_ms" => latency_ms(out, "50%"), "p99_ms" => latency_ms(out, "99%") }
    end

    def latency_ms(out, pct)
      m = out.match(/^\s+#{Regexp.escape(pct)}\s+([\d.]+)(us|ms|s)\b/) or return nil
      Float(m[1]) * { "us" => 0.001, "ms" => 1.0, "s" => 1000.0 }.fetch(m[2])
    end
  end

  module PumaReport
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

    def render(result)
      rounds = result["rounds"]
      cases = rounds.first["cases"].keys.sort_by { |c| CASES_ALL.index(c) || 99 }
      lines = []
      lines << "Rounds: #{rounds.size}, #{result['params']['dur']} s per wrk run. Load average per round: " +
               rounds.map { |r| "#{r['load_before']} -> #{r['load_after']}" }.join("; ")
      lines << ""
      lines << "| case | read req/s | read vs best Redis peer | read p50 / p99 ms | Puma CPU µs/read | " \
               "write req/s | write vs best Redis peer | write p50 / p99 ms | lost updates (median; per round) |"
      lines << "|---|---|---|---|---|---|---|---|---|"
      cases.each do |name|
        per = rounds.map { |r| r["cases"][name] }
        ratio = lambda do |kind|
          median(rounds.map do |r|
            best = %w[redis_store cache_redis].map { |p| r["cases"].dig(p, kind, "req_s") }.compact.max
            best && r["cases"][name][kind]["req_s"] / best
          end)
        end
        med = ->(kind, key) { median(per.map { |c| c[kind][key] }) }
        lost = per.map { |c| "#{c['write']['lost']}/#{c['write']['handled']}" }.join(", ")
        lines << "| #{name} | #{fmt(med.call('read', 'req_s'))} | #{fmt(ratio.call('read'), 2)}x | " \
                 "#{fmt(med.call('read', 'p50_ms'), 1)} / #{fmt(med.call('read', 'p99_ms'), 1)} | " \
                 "#{fmt(med.call('read', 'cpu_us'))} | #{fmt(med.call('write', 'req_s'))} | " \
                 "#{fmt(ratio.call('write'), 2)}x | #{fmt(med.call('write', 'p50_ms'), 1)} / " \
                 "#{fmt(med.call('write', 'p99_ms'), 1)} | #{fmt(med.call('write', 'lost'))}; #{lost} |"
      end
      lines.join("\n")
    end
  end
end

if $PROGRAM_NAME == __FILE__
  url = SkBench.redis_url
  result = SkBench::PumaBench.new(url).run
  File.write(ENV["BENCH_JSON"], JSON.pretty_generate(result)) if ENV["BENCH_JSON"]
  puts SkBench::PumaReport.render(result)
end

# frozen_string_literal: true

# Memory: what each session store costs an app server and the Redis (see
# bench/ruby/README.md, "Memory"). Each store of stores.rb (mem_rtt left out:
# it is a bound for speed, not a store) runs in a fresh Ruby process of its
# own, so nothing another store loaded is counted for it:
#
#   1. the app is built and one session logged in, read and written: Rails'
#      session machinery, the store's library and its connections are loaded
#      and warmed up (RSS then: "after warm-up");
#   2. the peak RSS is reset (/proc/self/clear_refs), the Redis database
#      flushed, and SESSIONS (2000) users arrive one after another, each
#      logging in, writing and reading (three requests, each a fresh session);
#   3. RSS growth and peak RSS over step 2, the process's private dirty
#      memory (what each further worker costs; RSS also counts library code
#      every worker shares through the page cache), and in Redis the bytes
#      the sessions take (MEMORY USAGE summed over every key) per session.
#
# Ratios are ours / peer: below 1, ours uses less. cache_mem keeps the
# sessions in the process (that is its RSS growth). Every process loads
# every store's library (stores.rb requires them all); what differs is what
# each store touches and allocates.
#
# Usage: SK_REDIS_URL=redis://127.0.0.1:port ruby bench/ruby/memory.rb [case]
# (scripts/bench-ruby.sh runs it after the others; with a case, that case's
# JSON on stdout). Knobs: SESSIONS (2000), ROUNDS (3), CASES.
require "json"
require "open3"
require "rbconfig"
require_relative "inproc"

module SkBench
  module Memory
    SESSIONS = Integer(ENV.fetch("SESSIONS", 2000))
    PEERS = %w[redis_store cache_redis].freeze

    module_function

    def proc_kib(path, field)
      line = File.foreach(path).find { |l| l.start_with?("#{field}:") } or raise "no #{field} in #{path}"
      Integer(line.split[1])
    end

    def measure(name, url)
      redis = Redis.new(url: url)
      app = SkBench.app(name, url, "memory")
      warm = Client.new(app)
      %w[/login /read /write].each { |path| warm.get(path) }
      redis.flushdb
      GC.start
      rss_warm = proc_kib("/proc/self/status", "VmRSS")
      File.write("/proc/self/clear_refs", "5") # resets VmHWM to the current RSS
      SESSIONS.times do
        user = Client.new(app)
        %w[/login /write /read].each { |path| user.get(path) }
      end
      GC.start
      process = {
        "case" => name, "sessions" => SESSIONS, "rss_warm_kib" => rss_warm,
        "rss_growth_kib" => proc_kib("/proc/self/status", "VmRSS") - rss_warm,
        "peak_kib" => proc_kib("/proc/self/status", "VmHWM"),
        "private_dirty_kib" => proc_kib("/proc/self/smaps_rollup", "Private_Dirty"),
        "cookie_bytes" => warm.cookie.bytesize
      }
      # Only now: listing the keys allocates too.
      keys = redis.scan_each(count: 1000).to_a
      used = keys.sum { |k| redis.call("MEMORY", "USAGE", k, "SAMPLES", "0").to_i }
      process.merge("redis_bytes_per_session" => used.to_f / SESSIONS, "redis_keys_per_session" => keys.size.to_f / SESSIONS)
    end

    # ROUNDS (3) fresh processes per case, the cases taken in turn; the
    # median of each figure (the peak depends on when the GC ran).
    def run_all
      cases = ENV.fetch("CASES", CASES.join(",")).split(",") - ["mem_rtt"]
      runs = Hash.new { |h, k| h[k] = [] }
      Integer(ENV.fetch("ROUNDS", 3)).times do
        cases.each do |name|
          out, status = Open3.capture2(RbConfig.ruby, "-W0", __FILE__, name)
          raise "memory.rb #{name} failed" unless status.success?

          m = JSON.parse(out.lines.last)
          $stderr.puts format("memory %-12s warm %.1f MiB  growth %.1f MiB  peak %.1f MiB  private dirty %.1f MiB  " \
                              "redis %d B/session", name, m["rss_warm_kib"] / 1024.0, m["rss_growth_kib"] / 1024.0,
                              m["peak_kib"] / 1024.0, m["private_dirty_kib"] / 1024.0, m["redis_bytes_per_session"])
          runs[name] << m
        end
      end
      runs.transform_values { |ms| ms.first.to_h { |k, v| [k, v.is_a?(Numeric) ? median(ms.map { |m| m[k] }) : v] } }
    end

    def median(values)
      sorted = values.sort
      sorted[sorted.size / 2]
    end

    def mib(kib) = format("%.1f", kib / 1024.0)

    def ratio_row(results, peer)
      a = results.fetch("ours")
      b = results.fetch(peer)
      cells = %w[peak_kib private_dirty_kib redis_bytes_per_session].map { |f| format("%.2fx", a[f].to_f / b[f]) }
      "| ours / #{peer} | #{cells.join(' | ')} |"
    end

    def report(results)
      lines = ["### Memory (#{SESSIONS} sessions, each logged in, written and read; each store in a fresh " \
               "process; medians of #{ENV.fetch('ROUNDS', 3)} processes per case)", "",
               "| case | RSS after warm-up MiB | RSS growth MiB | peak RSS MiB | private dirty MiB | " \
               "Redis bytes / session | Redis keys / session | cookie bytes |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"]
      results.each do |name, m|
        lines << "| #{name} | #{mib(m['rss_warm_kib'])} | #{mib(m['rss_growth_kib'])} | #{mib(m['peak_kib'])} | " \
                 "#{mib(m['private_dirty_kib'])} | #{m['redis_bytes_per_session'].round} | " \
                 "#{format('%.2f', m['redis_keys_per_session'])} | #{m['cookie_bytes']} |"
      end
      lines += ["", "Ours / peer (below 1: ours uses less).", "",
                "| ours vs peer | peak RSS | private dirty | Redis bytes / session |", "|---|---:|---:|---:|"]
      PEERS.each { |peer| lines << ratio_row(results, peer) if results.key?("ours") && results.key?(peer) }
      lines.join("\n")
    end
  end
end

if $PROGRAM_NAME == __FILE__
  url = SkBench.redis_url
  if (name = ARGV.first)
    puts JSON.generate(SkBench::Memory.measure(name, url))
  else
    results = SkBench::Memory.run_all
    File.write(ENV["BENCH_JSON"], JSON.pretty_generate(results)) if ENV["BENCH_JSON"]
    puts SkBench::Memory.report(results)
  end
end

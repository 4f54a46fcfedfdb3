# frozen_string_literal: true

# What a request costs without the network: process CPU per request of one
# case of stores.rb, or of ours with its engine swapped for a store that
# answers from memory (the first load's result; saves report :saved on
# /write, :unchanged on /read). Set against cache_mem, it says what our
# adapter costs by itself; set against ours with Redis, what its two round
# trips cost inside a Rails request. A diagnostic for README analyses, not
# part of the benchmark.
#
#   SK_REDIS_URL=redis://127.0.0.1:port ruby bench/ruby/no_network.rb /write [N] [ours-in-memory|CASE]
#
# Best of five runs of N requests (default 5000).
require_relative "inproc"

path = ARGV[0] || "/write"
n = Integer(ARGV[1] || 5000)
name = ARGV[2] || "ours-in-memory"
in_memory = name == "ours-in-memory"
app = SkBench.app(in_memory ? "ours" : name, ENV.fetch("SK_REDIS_URL"), "no-network")
client = SkBench::Client.new(app)
client.get("/login")

if in_memory
  adapter = app
  adapter = adapter.instance_variable_get(:@app) until adapter.instance_variable_defined?(:@sessionkeeper_store)
  engine = adapter.instance_variable_get(:@sessionkeeper_store)
  first = nil
  in_memory_store = Object.new
  in_memory_store.define_singleton_method(:load) do |id|
    first ||= engine.load(id)
    Sessionkeeper::Loaded.new(first.data.dup, first.baseline, nil, nil, nil)
  end
  in_memory_store.define_singleton_method(:save) { |*| path == "/write" ? :saved : :unchanged }
  adapter.instance_variable_set(:@sessionkeeper_store, in_memory_store)
end

300.times { client.get(path) }
best = Array.new(5) do
  cpu = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  n.times { client.get(path) }
  (Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - cpu) / n * 1e6
end.min
puts format("%s %s: %.1f µs of CPU per request", name, path, best)

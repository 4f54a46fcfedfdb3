# frozen_string_literal: true

# Shared by every test file. The Redis servers are started by
# scripts/with-redis.sh (SK_REDIS_URL, SK_CLUSTER_URL); with SK_REQUIRE_REDIS=1
# a missing one fails the run instead of skipping.
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "digest"
require "open3"
require "sessionkeeper"

module TestRedis
  module_function

  URL_VARS = { standalone: "SK_REDIS_URL", cluster: "SK_CLUSTER_URL", sentinel: "SK_SENTINEL_URL",
               tls: "SK_TLS_URL" }.freeze

  def url_for(topology)
    name = URL_VARS.fetch(topology)
    url = ENV[name]
    return url if url && !url.empty?
    raise "#{name} is not set (SK_REQUIRE_REDIS=1)" if ENV["SK_REQUIRE_REDIS"] == "1"

    nil
  end

  def standalone_url
    url_for(:standalone)
  end

  # The topology the Rails suite runs against: SK_TEST_TOPOLOGY=standalone|cluster.
  def topology
    (ENV["SK_TEST_TOPOLOGY"] || "standalone").to_sym
  end

  # A key prefix private to one test run, so runs never see each other's data.
  def unique_prefix(what)
    "sktest:#{what}:#{Process.pid}:#{rand(1 << 30)}:"
  end

  # The Redis key the engine stores session `id` under.
  def storage_key(prefix, id)
    "#{prefix}2::#{Digest::SHA256.hexdigest(id)}"
  end

  # Runs redis-cli against the server (or, with -c, the cluster) behind `url`:
  # over TLS for rediss:// (CA from SK_TLS_CA), and against the current
  # master for redis+sentinel://. `stdin:` becomes the last argument, byte
  # for byte (redis-cli -x).
  def cli(url, *args, stdin: nil)
    host, port = first_host(url)
    host, port = sentinel_master(host, port, url.split("/").last) if url.start_with?("redis+sentinel://")
    cmd = ["redis-cli", "-h", host, "-p", port.to_s]
    cmd += ["--tls", "--cacert", ENV.fetch("SK_TLS_CA")] if url.start_with?("rediss://")
    cmd << "-c" if url.include?("cluster")
    cmd << "-x" if stdin
    out, status = Open3.capture2e(*cmd, *args.map(&:to_s), stdin_data: stdin.to_s, binmode: true)
    raise "redis-cli #{args.join(' ')} failed: #{out}" unless status.success?

    out.strip
  end

  def first_host(url)
    url.sub(%r{\A[a-z+]+://}, "").split(",").first.split("/").first.split(":")
  end

  # [host, port] of the master a Sentinel currently names.
  def sentinel_master(host, port, name)
    out, status = Open3.capture2e("redis-cli", "-h", host, "-p", port.to_s, "SENTINEL", "get-master-addr-by-name", name)
    raise "SENTINEL get-master-addr-by-name failed: #{out}" unless status.success?

    out.split("\n").map(&:strip).first(2)
  end

  # A TCP port with nothing listening on it.
  def closed_port
    require "socket"
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    server.close
    port
  end
end

module RedisTestHelpers
  def require_url(topology)
    TestRedis.url_for(topology) || skip("#{topology} Redis not running (use scripts/with-redis.sh)")
  end
end

Minitest::Test.include(RedisTestHelpers)

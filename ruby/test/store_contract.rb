# frozen_string_literal: true

require_relative "test_helper"

# The native Store through the Ruby facade: value conversion and the
# operations. Included by one test class per topology (store_test.rb:
# standalone and Cluster; topology_test.rb: Sentinel and TLS), which define
# `url` and may define `topology_options` (e.g. the TLS CA).
module StoreContract
  def store(**options)
    Sessionkeeper::Store.new(url, key_prefix: @prefix, command_timeout: 2, **topology_options, **options)
  end

  def topology_options
    {}
  end

  def setup
    @prefix = TestRedis.unique_prefix("store")
  end

  def test_values_round_trip
    s = store
    t = Time.at(1_700_000_000, 123_456_789, :nsec)
    data = {
      "nil" => nil, "t" => true, "f" => false, "int" => -(2**63), "max" => 2**63 - 1, "float" => 1.5,
      "str" => "héllo", "bin" => "\xFF\x00".b, :sym_key => :sym_value, "time" => t,
      "nested" => { "list" => [1, "two", [3.0], { inner: :x }], "empty" => {} }
    }
    id, = s.create(data)
    loaded = s.load(id)
    got = loaded.data
    assert_nil got["nil"]
    assert_equal true, got["t"]
    assert_equal false, got["f"]
    assert_equal(-(2**63), got["int"])
    assert_equal 2**63 - 1, got["max"]
    assert_equal 1.5, got["float"]
    assert_equal "héllo", got["str"]
    assert_equal Encoding::UTF_8, got["str"].encoding
    assert_equal "\xFF\x00".b, got["bin"]
    assert_equal Encoding::BINARY, got["bin"].encoding
    assert_equal "sym_value", got["sym_key"], "Symbols are stored as Strings, keys too"
    assert_equal t, got["time"]
    assert_equal 123_456_789, got["time"].nsec
    assert got["time"].utc?
    assert_equal({ "list" => [1, "two", [3.0], { "inner" => "x" }], "empty" => {} }, got["nested"])
    assert_instance_of Sessionkeeper::Native::Baseline, loaded.baseline
    assert_kind_of Time, loaded.created_at
    assert_operator loaded.expires_at, :>, Time.now
  end

  def test_unsupported_values_name_the_key
    s = store
    e = assert_raises(Sessionkeeper::CodecError) { s.create("user" => Object.new) }
    assert_match(/session key "user": cannot store an instance of Object/, e.message)
    refute e.temporary?
    e = assert_raises(Sessionkeeper::CodecError) { s.create("cart" => { "items" => [1, 2**64] }) }
    assert_match(/session key "cart"\["items"\]\[1\]: the Integer 18446744073709551616 does not fit in 64 bits/, e.message)
    e = assert_raises(Sessionkeeper::CodecError) { s.create("h" => { 1 => 2 }) }
    assert_match(/session key "h": keys must be Strings or Symbols, found a Integer key/, e.message)
    loop_hash = {}
    loop_hash["self"] = loop_hash
    e = assert_raises(Sessionkeeper::CodecError) { s.create("loop" => loop_hash) }
    assert_match(/nested more than/, e.message)
    e = assert_raises(Sessionkeeper::CodecError) { s.create("bad" => "\xFF".dup.force_encoding("UTF-8")) }
    assert_match(/session key "bad": the String cannot be read as text.*String#b/, e.message)
  end

  def test_save_writes_only_changes_and_merges_concurrent_saves
    s = store
    id, = s.create("a" => 1, "b" => 1)
    first = s.load(id)
    second = s.load(id)
    first.data["a"] = 2
    second.data["b"] = 3
    assert_equal :saved, s.save(id, first.baseline, first.data)
    assert_equal :saved, s.save(id, second.baseline, second.data)
    assert_equal({ "a" => 2, "b" => 3 }, s.load(id).data)
    assert_equal :unchanged, s.save(id, first.baseline, first.data)
    first.data.delete("b")
    assert_equal :saved, s.save(id, first.baseline, first.data)
    assert_equal({ "a" => 2 }, s.load(id).data)
  end

  def test_save_after_destroy_is_gone_and_does_not_resurrect
    s = store
    id, = s.create("user_id" => 7)
    loaded = s.load(id)
    assert s.destroy(id)
    loaded.data["x"] = 1
    assert_equal :gone, s.save(id, loaded.baseline, loaded.data)
    assert_nil s.load(id)
    refute s.exists?(id)
  end

  def test_insert_touch_exists_renew_destroy
    s = store
    id = Sessionkeeper::Store.generate_id
    assert Sessionkeeper::Store.valid_id?(id)
    refute Sessionkeeper::Store.valid_id?("2::abc")
    baseline = s.insert(id, "k" => "v")
    refute_nil baseline
    assert_nil s.insert(id, "k" => "other"), "insert never overwrites"
    assert s.exists?(id)
    assert s.touch(id)
    new_id = s.renew(id)
    refute_equal id, new_id
    refute s.exists?(id)
    assert_equal({ "k" => "v" }, s.load(new_id).data)
    assert_nil s.renew(id)
    assert s.destroy(new_id)
    refute s.destroy(new_id)
    refute s.touch(new_id)
    assert_nil s.load("not a valid id")
    assert_raises(Sessionkeeper::InvalidIdError) { s.insert("short", {}) }
  end

  def test_save_of_a_new_session_with_an_empty_baseline
    s = store
    id = Sessionkeeper::Store.generate_id
    s.insert(id, {})
    assert_equal :saved, s.save(id, s.new_baseline, "a" => 1)
    assert_equal({ "a" => 1 }, s.load(id).data)
  end

  def test_per_request_ttl
    s = store(idle_ttl: 3600)
    short = s.with_idle_ttl(1)
    assert_in_delta 1.0, short.idle_ttl, 0.001
    assert_in_delta 3600.0, s.idle_ttl, 0.001
    id, = short.create("a" => 1)
    assert_operator short.load(id).expires_at, :<=, Time.now + 1.5
    sleep 1.3
    assert_nil s.load(id)
  end

  def test_stats
    s = store
    id, = s.create("a" => 1)
    s.load(id)
    stats = s.stats
    assert_equal 1, stats[:creates]
    assert_equal 1, stats[:hits]
    assert_equal 0, stats[:errors][:connection]
    assert_operator stats[:round_trips][:count], :>=, 2
  end

  def test_too_large
    s = store(max_size: 100)
    e = assert_raises(Sessionkeeper::TooLargeError) { s.create("a" => "x" * 200) }
    assert_match(/max_size/, e.message)
  end

  # Bytes that are no session in any layout the engine has used (0xC1 is the
  # one byte MessagePack never uses). Whether the engine reports them as
  # undecodable (CodecError, after deleting them) or as "no session", the
  # caller never gets them back as data, and the id holds nothing afterwards.
  def test_corrupt_value_is_never_served
    s = store
    id, = s.create("a" => 1)
    TestRedis.cli(url, "SET", TestRedis.storage_key(@prefix, id), "\xC1garbage".b)
    begin
      assert_nil s.load(id), "a corrupt session is no session"
    rescue Sessionkeeper::CodecError => e
      refute e.temporary?
      refute_match(/garbage/, e.message, "messages never carry session payloads")
    end
    assert_nil s.load(id)
    refute s.exists?(id)
    refute s.touch(id)
  end
end

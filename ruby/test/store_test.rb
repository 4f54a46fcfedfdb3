# frozen_string_literal: true

require_relative "store_contract"
require "rack/utils"

class StoreStandaloneTest < Minitest::Test
  include StoreContract

  def url
    require_url(:standalone)
  end
end

class StoreClusterTest < Minitest::Test
  include StoreContract

  def url
    require_url(:cluster)
  end
end

class StoreErrorsTest < Minitest::Test
  def test_error_tree
    kinds = %i[ConfigError ConnectionError TimeoutError AuthError CodecError TooLargeError InvalidIdError UnexpectedError]
    kinds.each { |k| assert_operator Sessionkeeper.const_get(k), :<, Sessionkeeper::Error }
    assert_operator Sessionkeeper::Error, :<, StandardError
    assert_operator Sessionkeeper::TimeoutError, :<, Sessionkeeper::ConnectionError
    assert Sessionkeeper::ConnectionError.new("x").temporary?
    refute Sessionkeeper::ConfigError.new("x").temporary?
  end

  def test_config_errors_name_the_problem
    e = assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper::Store.new("bogus://x") }
    assert_match(/bogus/, e.message)
    e = assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper::Store.new("memory://x", idle_tll: 3) }
    assert_match(/unknown option "idle_tll"/, e.message)
  end

  def test_connection_refused_is_a_temporary_connection_error
    store = Sessionkeeper::Store.new("redis://127.0.0.1:#{TestRedis.closed_port}/0", connect_timeout: 0.5)
    e = assert_raises(Sessionkeeper::ConnectionError) { store.load(Sessionkeeper::Store.generate_id) }
    assert e.temporary?
    assert_match(/cannot reach Redis/, e.message)
  end

  def test_password_never_in_inspect
    store = Sessionkeeper::Store.new("redis://user:s3cret@127.0.0.1:1/0")
    refute_match(/s3cret/, store.inspect)
  end
end

# serializer: :marshal, the opt-in for Ruby-only values.
class StoreSerializerTest < Minitest::Test
  Point = Struct.new(:x, :y)

  def setup
    @url = require_url(:standalone)
    @prefix = TestRedis.unique_prefix("marshal")
  end

  def store(**options)
    Sessionkeeper::Store.new(@url, key_prefix: @prefix, **options)
  end

  def test_unrepresentable_values_are_stored_with_marshal
    require "date"
    require "set"
    s = store(serializer: :marshal)
    data = {
      "point" => Point.new(1, 2), "day" => Date.new(2024, 2, 29), "set" => Set[1, 2],
      "big" => 2**80, "int_keys" => { 1 => "one" }, "latin1" => "caf\xE9".dup.force_encoding("UTF-8"),
      "cart" => { "items" => [Point.new(3, 4)], "total" => 7 }, "plain" => "text", "when" => Time.at(0).utc
    }
    id, = s.create(data)
    got = s.load(id).data
    data.each { |k, v| assert_equal v, got[k], k }
    assert_instance_of Point, got["cart"]["items"][0]

    # What every other reader (no serializer) sees: only the offending values
    # are dumped, each as a one-entry map holding Marshal bytes.
    plain = store.load(id).data
    assert_equal({ "total" => 7, "items" => [{ "__ruby_marshal__" => Marshal.dump(Point.new(3, 4)).b }] }, plain["cart"])
    assert_equal "text", plain["plain"]
    assert_equal Marshal.dump(2**80).b, plain["big"]["__ruby_marshal__"]
  end

  def test_change_detection_and_concurrent_saves_still_work
    s = store(serializer: :marshal)
    id, = s.create("point" => Point.new(1, 2), "n" => 1)
    first = s.load(id)
    second = s.load(id)
    assert_equal :unchanged, s.save(id, first.baseline, first.data), "dumping the same object gives the same bytes"
    first.data["point"] = Point.new(5, 6)
    second.data["n"] = 2
    assert_equal :saved, s.save(id, first.baseline, first.data)
    assert_equal :saved, s.save(id, second.baseline, second.data)
    assert_equal({ "point" => Point.new(5, 6), "n" => 2 }, s.load(id).data)
  end

  def test_a_hash_shaped_like_the_marker_round_trips_as_itself
    s = store(serializer: :marshal)
    lookalike = { "__ruby_marshal__" => Marshal.dump(Point.new(9, 9)).b }
    id, = s.create("x" => lookalike)
    assert_equal lookalike, s.load(id).data["x"], "stored data never reaches Marshal.load as if we dumped it"
  end

  def test_custom_serializer_object
    codec = Object.new
    def codec.dump(value) = "pt:#{value.x},#{value.y}"
    def codec.load(bytes) = StoreSerializerTest::Point.new(*bytes.delete_prefix("pt:").split(",").map(&:to_i))
    s = store(serializer: codec)
    id, = s.create("p" => Point.new(7, 8))
    assert_equal Point.new(7, 8), s.load(id).data["p"]
    assert_equal "pt:7,8".b, store.load(id).data["p"]["__ruby_marshal__"]
  end

  def test_errors_name_the_key
    e = assert_raises(Sessionkeeper::CodecError) { store.create("user" => Point.new(1, 2)) }
    assert_match(/session key "user": cannot store an instance of StoreSerializerTest::Point.*serializer: :marshal/, e.message)
    e = assert_raises(Sessionkeeper::CodecError) { store(serializer: :marshal).create("cb" => { "f" => -> {} }) }
    assert_match(/session key "cb"\["f"\]: cannot store an instance of Proc: Marshal.dump failed \(TypeError\)/, e.message)
    assert_raises(ArgumentError) { store(serializer: :yaml) }
  end

  # Rails apps autoload classes: a dumped object whose class is not loaded
  # yet loads once the class is resolved.
  def test_a_class_not_loaded_yet_is_autoloaded
    require "tmpdir"
    Object.const_set(:SkLateLoaded, Struct.new(:v))
    id, = store(serializer: :marshal).create("late" => SkLateLoaded.new(1))
    Object.send(:remove_const, :SkLateLoaded)
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "sk_late_loaded.rb"), "SkLateLoaded = Struct.new(:v)\n")
      Object.autoload(:SkLateLoaded, File.join(dir, "sk_late_loaded.rb"))
      assert_equal 1, store(serializer: :marshal).load(id).data["late"].v
    end
  ensure
    Object.send(:remove_const, :SkLateLoaded) if Object.const_defined?(:SkLateLoaded, false)
  end

  def test_a_value_marshal_cannot_load_is_a_codec_error_naming_the_key
    id, = store.create("bad" => { "__ruby_marshal__" => "\x04\x08garbage".b })
    e = assert_raises(Sessionkeeper::CodecError) { store(serializer: :marshal).load(id) }
    assert_match(/session key "bad": Marshal.load could not read the stored value/, e.message)
  end
end

# Shared mode's cookie (issue 7): the engine signs and verifies; these check
# the Ruby API and the format against an HMAC computed here, independently.
class CookieSigningTest < Minitest::Test
  SECRET = "a shared secret of at least 32 bytes!"
  OLD = "the previous secret, also 32 bytes or more"

  def test_format_is_express_sessions
    require "openssl"
    require "base64"
    id = Sessionkeeper::Store.generate_id
    value = Sessionkeeper.sign_cookie(id, SECRET)
    expected = Base64.strict_encode64(OpenSSL::HMAC.digest("SHA256", SECRET, id)).delete("=")
    assert_equal "s:#{id}.#{expected}", value
    assert_equal id, Sessionkeeper.unsign_cookie(value, SECRET)
    assert_equal id, Sessionkeeper.unsign_cookie(value, [SECRET])
  end

  def test_rotation_and_rejection
    id = Sessionkeeper::Store.generate_id
    old_value = Sessionkeeper.sign_cookie(id, OLD)
    assert_equal id, Sessionkeeper.unsign_cookie(old_value, [SECRET, OLD]), "every secret verifies"
    assert_nil Sessionkeeper.unsign_cookie(old_value, [SECRET]), "a retired secret no longer does"
    value = Sessionkeeper.sign_cookie(id, SECRET)
    [id, value.sub(/.\z/) { |c| c == "A" ? "B" : "A" }, value.delete_prefix("s:"), "#{value}x", "", "s:"].each do |bad|
      assert_nil Sessionkeeper.unsign_cookie(bad, SECRET), bad
    end
  end

  def test_escaped_forms_are_accepted
    id = Sessionkeeper::Store.generate_id
    value = Sessionkeeper.sign_cookie(id, SECRET)
    [Rack::Utils.escape(value), "\"#{value}\"", value.tr("+", " ")].each do |form|
      assert_equal id, Sessionkeeper.unsign_cookie(form, SECRET), form
    end
  end

  def test_bad_secrets_are_config_errors
    id = Sessionkeeper::Store.generate_id
    assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper.sign_cookie(id, "short") }
    assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper.unsign_cookie("s:x.y", ["short"]) }
    assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper.unsign_cookie("s:x.y", []) }
    assert_raises(Sessionkeeper::InvalidIdError) { Sessionkeeper.sign_cookie("not an id", SECRET) }
  end
end

# Ruby interop peer. Usage:
#   ruby -Iruby/lib tests/interop/peer.rb write URL          -> prints the new session id
#   ruby -Iruby/lib tests/interop/peer.rb read URL ID        -> prints what Ruby sees, as tagged JSON
#   ruby -Iruby/lib tests/interop/peer.rb hammer URL ID N T  -> from Unix time T (ms), N times: load, set "rb_<i>" = i, save
require "json"
require "sessionkeeper"

PREFIX = "sk-interop:"

def golden
  {
    "nil" => nil,
    "true" => true,
    "false" => false,
    "int_small" => 42,
    "int_negative" => -7,
    "int_2_53_plus_1" => 2**53 + 1,
    "int_min" => -2**63,
    "int_max" => 2**63 - 1,
    "float" => 3.25,
    "float_tenth" => 0.1,
    "float_whole" => 2.0,
    "float_negative_zero" => -0.0,
    "float_huge" => 1.5e300,
    "float_2_53" => 2.0**53,
    "str_empty" => "",
    "str_utf8" => "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \u{1F389}",
    "bytes" => "\x00\x01abc\xfe\xff".b,
    "bytes_empty" => "".b,
    "array" => [1, "two", nil, [3.5, false]],
    "array_empty" => [],
    "map" => { "a" => 1, "nested" => { "b" => [true, { "c" => "d" }] }, "empty" => {} },
    "symbol" => :sym,
    "timestamp" => Time.at(1_795_437_296, 123_456_789, :nsec, in: "UTC"),
    "timestamp_pre_epoch" => Time.at(-1, 500_000_000, :nsec, in: "UTC"),
  }
end

def tag(v)
  case v
  when nil then ["nil"]
  when true, false then ["bool", v]
  when Integer then ["int", v.to_s]
  when Float then ["float", [v].pack("G").unpack1("H*")]
  when String
    if v.encoding == Encoding::BINARY then ["bytes", v.unpack1("H*")]
    elsif v.encoding == Encoding::UTF_8 then ["str", v]
    else ["str(#{v.encoding})", v.encode("UTF-8")]
    end
  when Array then ["array", v.map { |x| tag(x) }]
  when Hash
    ["map", v.to_h { |k, x| [k.is_a?(String) ? k : "#{k.class}:#{k}", tag(x)] }]
  when Time then [v.utc? ? "time" : "time(local)", v.to_i, v.nsec]
  else ["other(#{v.class})", v.inspect]
  end
end

cmd, url, id, n = ARGV
# SK_INTEROP_CODEC: the store codec ("msgpack" by default, or "json").
store = Sessionkeeper::Store.new(url, key_prefix: PREFIX, codec: ENV.fetch("SK_INTEROP_CODEC", "msgpack"))
case cmd
when "write"
  sid, = store.create(golden)
  puts sid
when "read"
  loaded = store.load(id) or abort("ruby: no session #{id}")
  puts JSON.generate(tag(loaded.data))
when "hammer" # ARGV[4]: start at this Unix time (ms), so the languages overlap
  sleep([ARGV[4].to_i / 1000.0 - Time.now.to_f, 0].max)
  first = (Time.now.to_f * 1000).round
  Integer(n).times do |i|
    loaded = store.load(id) or abort("ruby: session #{id} vanished")
    data = loaded.data
    data["rb_#{i}"] = i
    store.save(id, loaded.baseline, data)
  end
  puts "#{first} #{(Time.now.to_f * 1000).round}"
when "refuse"
  # Each value alone under key "k": the error class it raises, or what reads back.
  require "date"
  require "set"
  cases = {
    "int_2_64" => 2**64,
    "date" => Date.new(2026, 11, 23),
    "object" => Object.new,
    "set" => Set[1],
    "rational" => Rational(1, 3),
    "non_string_key" => { 1 => 2 },
    "invalid_utf8" => "\xff".dup.force_encoding("UTF-8"),
    "latin1_string" => "caf\xe9".dup.force_encoding("ISO-8859-1"),
    "local_time" => Time.at(1_795_437_296, 5, :nsec, in: "+09:00"),
    "symbol_key" => { sym: 1 },
    "nan" => Float::NAN,
  }
  begin
    require "active_support/time"
    cases["time_with_zone"] = Time.at(1_795_437_296, 7, :nsec).utc.in_time_zone("Tokyo")
    cases["datetime"] = DateTime.new(2026, 11, 23, 12, 34, 56.5r, "+02:00")
    cases["date_with_active_support"] = Date.new(2026, 11, 23)
  rescue LoadError
    nil # the driver reports these cases as not tried
  end
  out = cases.map do |name, value|
    begin
      sid, = store.create("k" => value)
      [name, "stored", tag(store.load(sid).data["k"])]
    rescue StandardError => e
      [name, e.class.name, e.message]
    end
  end
  puts JSON.generate(out)
else
  abort "usage: peer.rb write|read|hammer URL [ID] [N]"
end

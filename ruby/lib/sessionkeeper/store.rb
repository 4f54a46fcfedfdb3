# frozen_string_literal: true

module Sessionkeeper
  # A session read by {Store#load}.
  #
  # @!attribute data
  #   @return [Hash{String=>Object}] the session's keys and values
  # @!attribute baseline
  #   @return [Native::Baseline] keep it until {Store#save}: it is what lets
  #     a save write only the keys that changed
  # @!attribute created_at
  #   @return [Time]
  # @!attribute expires_at
  #   @return [Time, nil] when the session ends unless used again
  # @!attribute deadline
  #   @return [Time, nil] the absolute deadline (absolute_ttl), if any
  Loaded = Struct.new(:data, :baseline, :created_at, :expires_at, :deadline)

  # What `serializer: :marshal` (or a custom object with load/dump) does: the
  # native converter hands it each value the cross-language model cannot
  # represent, and stores the String it returns as the one-entry map
  # `{"__ruby_marshal__" => <binary>}`; on load that map is handed back here.
  # A load that names a class not loaded yet ("undefined class/module X")
  # resolves X (which lets Rails' autoloader load it) and retries, as Rails'
  # own Marshal-based session stores do. Every other failure, including a
  # class that no longer exists, is a {CodecError} naming the session key,
  # which the adapters treat like a corrupt session (on_session_load_error,
  # session removed, fresh session) instead of an error page.
  # @api private
  class ValueSerializer
    MARK = "__ruby_marshal__"

    # @param option [:marshal, #load, #dump, nil]
    # @return [ValueSerializer, nil]
    def self.for(option)
      case option
      when nil, false then nil
      when ValueSerializer then option
      when :marshal then new(Marshal, "Marshal")
      else
        unless option.respond_to?(:load) && option.respond_to?(:dump)
          raise ArgumentError, "serializer must be :marshal or respond to load and dump; got #{option.inspect}"
        end

        new(option, option.inspect)
      end
    end

    def initialize(impl, name)
      @impl = impl
      @name = name
    end

    # @param where [String] e.g. 'session key "user"'
    # @return [String] binary
    def dump(value, where)
      bytes = @impl.dump(value)
      raise TypeError, "dump returned a #{bytes.class}, not a String" unless bytes.is_a?(String)

      bytes.b
    rescue CodecError
      raise
    rescue StandardError => e
      raise CodecError, "#{where}: cannot store an instance of #{value.class}: #{@name}.dump failed (#{e.class}); " \
                        "store its id or a Hash of its attributes instead"
    end

    def load(bytes, where)
      attempts = 0
      begin
        @impl.load(bytes)
      rescue ArgumentError, NameError => e
        # Marshal's own message, or const_missing's NameError (Rails' classic autoloader).
        missing = e.message[%r{\Aundefined class/module ([\w:]+)}, 1] ||
                  (e.instance_of?(NameError) && e.name && e.name.to_s)
        if missing && attempts < 10 && resolve(missing)
          attempts += 1
          retry
        end
        raise CodecError, "#{where}: #{@name}.load could not read the stored value (#{e.class}" \
                          "#{missing ? ": undefined class/module #{missing}" : ''})"
      rescue CodecError
        raise
      rescue StandardError => e
        raise CodecError, "#{where}: #{@name}.load could not read the stored value (#{e.class})"
      end
    end

    def inspect
      "#<#{self.class.name} #{@name}>"
    end

    private

    # Whether the constant exists now (const_get runs autoload / Zeitwerk).
    def resolve(name)
      Object.const_get(name)
      true
    rescue NameError
      false
    end
  end

  # Sessions in Redis: the engine's store, with Ruby arguments.
  #
  # Every call that waits on Redis releases the GVL, and can be interrupted by
  # Thread#raise or Timeout.timeout (it then raises that exception). A Store is
  # safe to share between threads and survives fork (connections are per
  # process and reopen lazily in the child).
  #
  # @example
  #   store = Sessionkeeper::Store.new("redis://localhost:6379/0", idle_ttl: 2 * 3600)
  #   id, baseline = store.create("user_id" => 42)
  #   loaded = store.load(id)
  #   loaded.data["cart"] = [1, 2]
  #   store.save(id, loaded.baseline, loaded.data)   # writes only "cart"
  class Store
    # Options the engine understands (see the core's config.rs).
    OPTION_NAMES = %i[key_prefix idle_ttl absolute_ttl connect_timeout command_timeout codec max_size
                      tls_ca_file tls_insecure sentinel_username sentinel_password].freeze
    DURATION_OPTIONS = %i[idle_ttl absolute_ttl connect_timeout command_timeout].freeze
    DEFAULT_URL = "redis://127.0.0.1:6379/0"

    # @param url [String, nil] redis://, rediss://, redis+cluster://h1,h2,
    #   redis+sentinel://..., unix://, memory://name; defaults to
    #   ENV["REDIS_URL"], then redis://127.0.0.1:6379/0
    # @param options [Hash] key_prefix:, idle_ttl:, absolute_ttl:,
    #   connect_timeout:, command_timeout: (seconds as Numeric or
    #   ActiveSupport::Duration, or strings like "15m"; nil/false/0 turn a TTL
    #   off), codec: ("msgpack" or "json"), max_size: (bytes), tls_ca_file:,
    #   tls_insecure:
    # @param serializer [:marshal, #load, #dump, nil] opt-in, Ruby-only:
    #   values the cross-language model cannot represent are stored dumped
    #   with it instead of raising CodecError (see the README's warning)
    # @raise [ConfigError] on a bad URL or option (the message names it)
    def initialize(url = nil, serializer: nil, **options)
      url ||= ENV.fetch("REDIS_URL", DEFAULT_URL)
      @serializer = ValueSerializer.for(serializer)
      @native = Native::Store.new(url.to_s, self.class.engine_options(options))
    end

    # @api private
    def self.from_native(native, serializer = nil)
      store = allocate
      store.instance_variable_set(:@native, native)
      store.instance_variable_set(:@serializer, serializer)
      store
    end

    # @return [ValueSerializer, nil] the opt-in serializer, if any
    attr_reader :serializer

    # Turns Ruby option values into the engine's strings.
    # @api private
    def self.engine_options(options)
      options.each_with_object({}) do |(name, value), out|
        name = name.to_sym
        next if value.nil? && !DURATION_OPTIONS.include?(name)

        out[name.to_s] = DURATION_OPTIONS.include?(name) ? duration(value) : value.to_s
      end
    end

    # @api private
    def self.duration(value)
      case value
      when nil, false then "none"
      when String then value
      else
        raise ArgumentError, "expected seconds, got #{value.inspect}" unless value.respond_to?(:to_f)

        "#{(value.to_f * 1000).round}ms"
      end
    end

    # Reads a session and slides its expiry, in one round trip.
    # @param id [String] the public id (the cookie's value)
    # @return [Loaded, nil] nil for a missing, expired or invalid id
    # @raise [CodecError] the stored session could not be decoded; it has been
    #   deleted, so start a fresh one (when a value dumped by `serializer:`
    #   cannot be loaded, the session is left as it is: destroy it yourself)
    def load(id)
      data, baseline, created_ms, expires_ms, deadline_ms = @native.load(id.to_str, @serializer)
      return nil unless data

      Loaded.new(data, baseline, time_ms(created_ms), time_ms(expires_ms), time_ms(deadline_ms))
    end

    # Writes the keys of `data` that changed since `baseline` was taken, and
    # removes the keys that are gone, in one atomic round trip; keys another
    # request changed meanwhile are kept. Updates `baseline` on success.
    # @return [Symbol] :saved, :unchanged (nothing sent), or :gone (the
    #   session was destroyed or expired meanwhile and was NOT re-created)
    def save(id, baseline, data)
      @native.save(id.to_str, baseline, data.to_hash, @serializer)
    end

    # Stores a new session under a fresh id.
    # @return [Array(String, Native::Baseline)]
    def create(data = {})
      @native.create(data.to_hash, @serializer)
    end

    # Stores `data` under `id` (one a framework generated) only if that id is
    # free.
    # @return [Native::Baseline, nil] nil when a session already has that id
    def insert(id, data)
      @native.insert(id.to_str, data.to_hash, @serializer)
    end

    # @return [Boolean] false when there was no such session
    def destroy(id)
      @native.destroy(id.to_str)
    end

    # Slides a session's expiry without reading it.
    # @return [Boolean] false when it is gone
    def touch(id)
      @native.touch(id.to_str)
    end

    # @return [Boolean]
    def exists?(id)
      @native.exists?(id.to_str)
    end

    # Moves a session to a new id and deletes the old one (do it at login).
    # @return [String, nil] the new id; nil when there was no session
    def renew(id)
      @native.renew(id.to_str)
    end

    # For migration: what a peer store wrote for `id`, as it wrote it.
    # @param sources [Array<Array(Symbol, String)>] where to look, in order:
    #   [:private_id, prefix] (prefix + "2::" + sha256(id): redis-session-store
    #   0.11.6+, redis-actionpack) and [:plain, prefix] (prefix + id)
    # @return [Array(Integer, String), nil] the index of the source that held
    #   it and its bytes (binary)
    def legacy_read(id, sources)
      @native.legacy_read(id.to_str, legacy_sources(sources))
    end

    # For migration: stores `data` (decoded from {#legacy_read}) in this
    # store's format under `id` and deletes the peer's keys.
    # @return [Native::Baseline, nil] nil when another request migrated it first
    def legacy_migrate(id, sources, data)
      @native.legacy_migrate(id.to_str, legacy_sources(sources), data.to_hash, @serializer)
    end

    # For migration: deletes the peer's keys for `id`.
    def legacy_delete(id, sources)
      @native.legacy_delete(id.to_str, legacy_sources(sources))
      nil
    end

    # An empty baseline, for saving a session that was never loaded.
    # @return [Native::Baseline]
    def new_baseline
      @native.new_baseline
    end

    # The same store (connections, statistics) with another sliding expiry,
    # for per-request TTLs.
    # @param ttl [Numeric, ActiveSupport::Duration, nil] seconds; nil/false/0: none
    # @return [Store]
    def with_idle_ttl(ttl)
      ms = ttl ? (ttl.to_f * 1000).round : nil
      self.class.from_native(@native.with_idle_ttl(ms&.positive? ? ms : nil), @serializer)
    end

    # @return [Float, nil] the sliding expiry in seconds
    def idle_ttl
      ms = @native.idle_ttl_ms
      ms && ms / 1000.0
    end

    # @return [Float] seconds allowed to open a connection
    def connect_timeout
      @native.connect_timeout_ms / 1000.0
    end

    # @return [Float] seconds allowed for each reply
    def command_timeout
      @native.command_timeout_ms / 1000.0
    end

    # @return [String] "msgpack" or "json"
    def codec
      @native.codec
    end

    # @return [String]
    def key_prefix
      @native.key_prefix
    end

    # Counters and round-trip latency since this store was opened.
    # @return [Hash{Symbol=>Object}]
    def stats
      @native.stats
    end

    # @return [String] 32 lowercase hex characters from the OS CSPRNG
    def self.generate_id
      Native.generate_id
    end

    # @return [Boolean] whether `id` can be a session id at all
    def self.valid_id?(id)
      Native.valid_id?(id)
    end

    def inspect
      "#<#{self.class.name} #{@native.target} key_prefix=#{key_prefix.inspect} codec=#{codec}>"
    end

    private

    def legacy_sources(sources)
      sources.map { |kind, prefix| [kind.to_s, prefix.to_s] }
    end

    def time_ms(ms)
      ms && Time.at(ms / 1000, ms % 1000, :millisecond)
    end
  end
end

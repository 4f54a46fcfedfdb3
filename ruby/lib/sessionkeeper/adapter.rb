# frozen_string_literal: true

require "sessionkeeper"

module Sessionkeeper
  # What the Rails store ({ActionDispatch::Session::SessionkeeperStore}) and the
  # Rack middleware ({Sessionkeeper::Rack::Session}) share: option handling,
  # and Rack's three hooks (find_session, write_session, delete_session) over a
  # {Store}. Cookie handling, lazy loading and the per-request options
  # (:skip, :defer, :renew, :drop, :expire_after) stay Rack's and Rails'.
  #
  # Per request it keeps, in the Rack env, the {Native::Baseline} of the
  # session it loaded, so a save writes only the keys that changed, and two
  # requests changing different keys of one session keep both.
  #
  # Options (besides Rack's/Rails' cookie options: key, path, domain,
  # expire_after, secure, httponly, same_site, ...):
  #
  # url::                   Redis URL (also accepted as redis: { url: }); default ENV["REDIS_URL"]
  # redis::                 redis-session-store's hash: url:, host:, port:, db:, password:,
  #                         key_prefix:, expire_after:, ttl:, connect_timeout:, read_timeout:, timeout:
  #                         (read as redis-rb does: timeout: is the default of the other two)
  # key_prefix::            prefix of every Redis key (default "session:")
  # ttl::                   the Redis expiry when it should differ from expire_after
  # expire_after::          cookie expiry and (unless ttl is given) the sliding Redis expiry;
  #                         when neither is set the engine's idle_ttl applies (14 days unless given)
  # idle_ttl, absolute_ttl, connect_timeout, command_timeout, codec, max_size, tls_ca_file, tls_insecure::
  #                         engine options, see {Store#initialize}
  # on_redis_down::         ->(error, env, session_id) called when Redis is down or timing out
  # on_session_load_error:: ->(error, session_id) called when a stored session cannot be decoded
  #                         (it has been deleted; the request gets a fresh session)
  # fail_open::             true (default): Redis trouble gives the request a fresh session that
  #                         is not saved and gets no cookie; false: raise Sessionkeeper::ConnectionError
  # serializer::            how redis-session-store wrote its sessions: :marshal (its default),
  #                         :json, :hybrid, or an object with load/dump; used to read those
  #                         sessions during migration. Given explicitly as :marshal or an object,
  #                         it is also the opt-in for Ruby-only values: what the cross-language
  #                         format cannot represent is stored dumped with it (see
  #                         {Sessionkeeper::ValueSerializer} and the README's warning) instead of
  #                         raising CodecError
  # legacy_sessions::       :redis_session_store reads a session redis-session-store wrote (under
  #                         the same key_prefix, private or public id) when a cookie has no
  #                         Sessionkeeper session, and rewrites it in our format, so switching
  #                         stores logs nobody out. On by default when the options use
  #                         redis-session-store's shapes (redis: or serializer:); false turns it
  #                         off (no extra lookups for unknown cookies once old sessions expired)
  # shared_secret::         shared mode (docs/shared-sessions.md): a String of at least 32 bytes, or an
  #                         Array of them (newest first: the first signs, every one verifies). The
  #                         session cookie is then the signed value every Sessionkeeper adapter
  #                         issues and accepts (express-session's s:<id>.<signature>), and only
  #                         cookies that verify are read: anything else is no session. Without it
  #                         the cookie is the plain session id, as Rails' server-side stores use
  # store::                 an existing {Sessionkeeper::Store} to use instead of url and engine options
  module Adapter
    # Rack env keys, private to this adapter.
    BASELINE = "sessionkeeper.baseline"       # [public id, Native::Baseline] of the stored session
    UNAVAILABLE = "sessionkeeper.unavailable" # Redis failed during this request (fail-open)
    DESTROYED = "sessionkeeper.destroyed"     # public ids destroyed during this request
    GONE = "sessionkeeper.gone"               # the loaded session was destroyed by someone else
    LOGOUT_FAILED = "sessionkeeper.logout_failed"

    ENGINE_OPTIONS = %i[idle_ttl absolute_ttl connect_timeout command_timeout codec max_size
                        tls_ca_file tls_insecure sentinel_username sentinel_password].freeze
    OWN_OPTIONS = (%i[url redis key_prefix ttl serializer legacy_sessions on_redis_down on_session_load_error
                      fail_open store shared_secret] +
                   ENGINE_OPTIONS).freeze
    SERIALIZERS = %i[marshal json hybrid].freeze
    # redis-rb client options that mean nothing here; accepted so an existing
    # redis-session-store configuration boots unchanged.
    IGNORED_REDIS_OPTIONS = %i[driver id reconnect_attempts reconnect_delay reconnect_delay_max
                               inherit_socket namespace].freeze

    # @return [Sessionkeeper::Store] the store behind this middleware
    attr_reader :sessionkeeper_store

    def initialize(app, options = {})
      options = options.dup
      own = {}
      OWN_OPTIONS.each { |name| own[name] = options.delete(name) if options.key?(name) }
      rss_shape = own.key?(:redis) || own.key?(:serializer)
      redis = (own.delete(:redis) || {}).to_h.transform_keys(&:to_sym)

      # redis-session-store reads these from the redis: hash too.
      options[:expire_after] = redis.delete(:expire_after) if redis.key?(:expire_after) && !options.key?(:expire_after)
      redis_ttl = redis.delete(:ttl)
      ttl = own[:ttl].nil? ? redis_ttl : own[:ttl]
      redis_prefix = redis.delete(:key_prefix)
      key_prefix = own[:key_prefix].nil? ? redis_prefix : own[:key_prefix]
      options[:ttl] = ttl if ttl # per-request, like expire_after: request.session_options[:ttl] = ...

      @sk_callbacks = {
        on_redis_down: callable(own, :on_redis_down),
        on_session_load_error: callable(own, :on_session_load_error)
      }
      @sk_fail_open = own.fetch(:fail_open, true) ? true : false
      @sk_secrets = shared_secrets(own[:shared_secret])
      @sk_serializer = serializer(own[:serializer]) || :marshal
      legacy = own.fetch(:legacy_sessions) { rss_shape ? :redis_session_store : false }
      @sk_legacy = legacy_sources(legacy, key_prefix)
      @sk_base_ttl = ttl || options[:expire_after]
      @sk_ttl_stores = {}

      @sessionkeeper_store = own[:store] || begin
        engine = own.slice(*ENGINE_OPTIONS)
        engine[:key_prefix] = key_prefix if key_prefix
        engine.merge!(engine_options_from_redis(redis))
        engine[:idle_ttl] = @sk_base_ttl if @sk_base_ttl && !engine.key?(:idle_ttl)
        # :json and :hybrid only describe the sessions being migrated.
        value_serializer = own[:serializer] unless %i[json hybrid].include?(own[:serializer])
        Store.new(own[:url] || url_from_redis(redis), serializer: value_serializer, **engine)
      end
      super(app, options)
    end

    # Sessions get ids from the engine's generator (128 bits from the OS
    # CSPRNG, 32 hex characters: the shape Rails issues).
    def generate_sid(*)
      ::Rack::Session::SessionId.new(Store.generate_id)
    end

    private

    # Shared mode reads only cookies signed with one of the shared secrets
    # (the engine verifies them); anything else is no session.
    def extract_session_id(req)
      unless @sk_secrets
        sid = super
        # With `cookie_only: false` the id may come from the params, where
        # `?key[]=x` makes it an Array: no session, not an error.
        return sid&.public_id.is_a?(String) ? sid : nil
      end

      raw = req.cookies[@key]
      raw ||= req.params[@key] unless @cookie_only
      id = raw.is_a?(String) && Sessionkeeper.unsign_cookie(raw, @sk_secrets)
      id ? ::Rack::Session::SessionId.new(id) : nil
    end

    # Shared mode issues the session id signed with the first shared secret.
    def cookie_value(data)
      return super unless @sk_secrets

      Sessionkeeper.sign_cookie(data.public_id, @sk_secrets.first)
    end

    def find_session(req, sid)
      if sid && (loaded = sk_load(req, sid.public_id))
        req.set_header(BASELINE, [sid.public_id, loaded.baseline])
        [sid, sk_wrap(loaded.data)]
      else
        [generate_sid, {}]
      end
    end

    def write_session(req, sid, session, options)
      return false if req.get_header(UNAVAILABLE) || req.get_header(GONE)

      id = sid.public_id
      store = sk_store_for(options)
      entry = req.get_header(BASELINE)
      if entry && entry[0] == id
        # :gone: destroyed (a logout in another request) or expired meanwhile.
        # The engine did not re-create it and neither do we: the client's
        # cookie now points at nothing, so its next request starts afresh.
        return false if store.save(id, entry[1], session) == :gone
      else
        baseline = store.insert(id, session)
        unless baseline # the id is taken; with 128 random bits, only in theory
          id, baseline = store.create(session)
          sid = ::Rack::Session::SessionId.new(id)
        end
        req.set_header(BASELINE, [id, baseline])
      end
      sid
    rescue Sessionkeeper::Error => e
      sk_redis_down(req, e, id)
      false
    end

    def delete_session(req, sid, options)
      id = sid&.public_id
      return sk_renew(req, sid, options) if options[:renew] && !options[:drop] && id

      if id
        (req.get_header(DESTROYED) || req.set_header(DESTROYED, [])) << id
        loaded = req.get_header(BASELINE)&.first == id
        req.delete_header(BASELINE)
        if req.get_header(UNAVAILABLE)
          req.set_header(LOGOUT_FAILED, true)
        else
          begin
            store = sk_store_for(options)
            store.destroy(id)
            # A session redis-session-store wrote that this request never loaded.
            store.legacy_delete(id, @sk_legacy) if @sk_legacy && !loaded
          rescue Sessionkeeper::Error => e
            req.set_header(LOGOUT_FAILED, true)
            sk_redis_down(req, e, id)
          end
        end
      end
      options[:drop] ? nil : generate_sid
    end

    # Rack writes a session only after it was used; do not store (or send a
    # cookie for) one that was never stored and still holds nothing, and
    # nothing at all once Redis failed during this request.
    def commit_session?(req, session, options)
      return false if req.get_header(UNAVAILABLE) || req.get_header(GONE)
      return false unless super

      !req.get_header(BASELINE).nil? || !session.to_hash.empty?
    end

    def commit_session(req, res)
      super
      # Redis was down when the user logged out: the session may live on in
      # Redis, so at least make the browser forget its id.
      sk_forget_cookie(req, res) if req.get_header(LOGOUT_FAILED)
    end
    public :commit_session

    def sk_forget_cookie(_req, res)
      res.delete_cookie(key, path: @default_options[:path], domain: @default_options[:domain])
    end

    def sk_load(req, id)
      return nil if req.get_header(UNAVAILABLE) || req.get_header(DESTROYED)&.include?(id)

      store = sk_store_for(req.get_header(::Rack::RACK_SESSION_OPTIONS))
      store.load(id) || (@sk_legacy && sk_migrate(store, id))
    rescue Sessionkeeper::CodecError => e
      # The engine deletes a session it cannot decode; one holding a value
      # serializer: could not load is deleted here, as redis-session-store does.
      sk_destroy_quietly(store, id)
      @sk_callbacks[:on_session_load_error]&.call(e, id)
      nil
    rescue Sessionkeeper::Error => e
      sk_redis_down(req, e, id)
      nil
    end

    def sk_destroy_quietly(store, id)
      store.destroy(id)
    rescue Sessionkeeper::Error
      nil
    end

    # A session redis-session-store wrote for this cookie: decode it and store
    # it in our format (its keys are deleted), then load that.
    def sk_migrate(store, id)
      _source, bytes = store.legacy_read(id, @sk_legacy)
      return nil unless bytes

      data = begin
        sk_legacy_decode(bytes)
      rescue StandardError => e
        sk_drop_legacy(store, id)
        raise Sessionkeeper::CodecError, "the redis-session-store session could not be decoded with " \
                                         "serializer #{@sk_serializer.inspect} (#{e.class}); it was removed"
      end
      begin
        store.legacy_migrate(id, @sk_legacy, data)
      rescue Sessionkeeper::CodecError
        # Holds something our format cannot (a custom object): drop it, or
        # every request with this cookie would fail the same way.
        sk_drop_legacy(store, id)
        raise
      end
      store.load(id)
    end

    # legacy_delete leaves a peer key that has our own key's name (same
    # prefix, private id) alone; destroy removes that one.
    def sk_drop_legacy(store, id)
      store.legacy_delete(id, @sk_legacy)
      store.destroy(id)
    end

    def sk_legacy_decode(bytes)
      data = case @sk_serializer
             when :marshal then Marshal.load(bytes) # rubocop:disable Security/MarshalLoad
             when :json then sk_json(bytes)
             when :hybrid then bytes.start_with?("\x04\x08".b) ? Marshal.load(bytes) : sk_json(bytes) # rubocop:disable Security/MarshalLoad
             else @sk_serializer.load(bytes)
             end
      raise TypeError, "expected a Hash, got a #{data.class}" unless data.is_a?(Hash)

      data
    end

    def sk_json(bytes)
      require "json"
      JSON.parse(bytes.dup.force_encoding(Encoding::UTF_8), quirks_mode: true)
    end

    # Moves the stored session to a new id (login: the defence against session
    # fixation). Data, creation time and absolute deadline carry over.
    def sk_renew(req, sid, options)
      id = sid.public_id
      session = req.get_header(::Rack::RACK_SESSION)
      # Rack only loads a session it reads or writes; load it now so that its
      # data moves with the id and is written under the new one.
      session.to_hash if session.respond_to?(:loaded?) && !session.loaded?
      entry = req.get_header(BASELINE)
      return generate_sid unless entry && entry[0] == id && !req.get_header(UNAVAILABLE)

      new_id = sk_store_for(options).renew(id)
      unless new_id
        # Destroyed meanwhile (a logout elsewhere): writing this request's
        # copy under a new id would bring it back.
        req.set_header(GONE, true)
        return generate_sid
      end
      req.set_header(BASELINE, [new_id, entry[1]])
      ::Rack::Session::SessionId.new(new_id)
    rescue Sessionkeeper::Error => e
      sk_redis_down(req, e, id)
      generate_sid
    end

    # Fail-open (the default) for Redis being down or slow: the request goes
    # on with a fresh session that is not saved. Anything else is a bug or a
    # misconfiguration and raises.
    def sk_redis_down(req, error, id)
      raise error unless error.is_a?(Sessionkeeper::ConnectionError) || error.temporary?
      raise error unless @sk_fail_open

      first = !req.get_header(UNAVAILABLE)
      req.set_header(UNAVAILABLE, error)
      @sk_callbacks[:on_redis_down]&.call(error, req.env, id) if first
    end

    # The store for this request's expiry: `ttl`, else `expire_after`, from
    # the per-request options (request.session_options in Rails).
    def sk_store_for(options)
      ttl = options && (options[:ttl] || options[:expire_after])
      return @sessionkeeper_store if ttl.nil? || ttl == @sk_base_ttl

      seconds = ttl.to_f
      @sk_ttl_stores[seconds] ||= begin
        @sk_ttl_stores.clear if @sk_ttl_stores.size > 32
        @sessionkeeper_store.with_idle_ttl(seconds)
      end
    end

    def sk_wrap(data)
      data
    end

    def callable(options, name)
      value = options[name]
      return nil if value.nil?
      raise ArgumentError, "#{name} must respond to #call" unless value.respond_to?(:call)

      value
    end

    def serializer(value)
      return nil if value.nil?
      return value if SERIALIZERS.include?(value)
      return value if value.respond_to?(:load) && value.respond_to?(:dump)

      raise ArgumentError, "serializer must be one of #{SERIALIZERS.inspect} or respond to load and dump; " \
                           "got #{value.inspect}"
    end

    # nil (plain-id cookies), or the secrets, checked now: a short secret
    # is a ConfigError at boot, not on the first request.
    def shared_secrets(value)
      return nil if value.nil? || value == false

      secrets = Sessionkeeper.cookie_secrets(value).map { |secret| secret.dup.freeze }
      Sessionkeeper.unsign_cookie("", secrets)
      secrets.freeze
    end

    def legacy_sources(legacy, key_prefix)
      case legacy
      when false, nil then nil
      when :redis_session_store
        # Its keys: prefix + "2::" + sha256(id) since 0.11.6, prefix + id before.
        [[:private_id, key_prefix.to_s], [:plain, key_prefix.to_s]]
      else
        raise ArgumentError, "legacy_sessions must be :redis_session_store or false; got #{legacy.inspect}"
      end
    end

    def url_from_redis(redis)
      return redis.delete(:url) if redis.key?(:url)
      return ENV.fetch("REDIS_URL", Store::DEFAULT_URL) unless (redis.keys & %i[host port db path password]).any?

      db = redis.delete(:db) || 0
      if (path = redis.delete(:path))
        return "unix://#{path}?db=#{db}"
      end

      auth = ""
      username = redis.delete(:username)
      if (password = redis.delete(:password))
        require "erb"
        auth = "#{ERB::Util.url_encode(username.to_s)}:#{ERB::Util.url_encode(password.to_s)}@"
      end
      scheme = redis.delete(:ssl) ? "rediss" : "redis"
      "#{scheme}://#{auth}#{redis.delete(:host) || '127.0.0.1'}:#{redis.delete(:port) || 6379}/#{db}"
    end

    def engine_options_from_redis(redis)
      if redis.key?(:client)
        raise ArgumentError, "redis: { client: } is not supported: Sessionkeeper keeps its own connections " \
                             "(pooled, Cluster- and fork-aware); pass url: instead"
      end
      # As redis-rb reads them: timeout: is the default of the others, and
      # only connect_timeout: (or timeout:) bounds a connect. A reply waits
      # for read_timeout:, else timeout:, else write_timeout:.
      timeout, connect, read, write = %i[timeout connect_timeout read_timeout write_timeout].map { |k| redis.delete(k) }
      out = {}
      out[:connect_timeout] = connect || timeout if connect || timeout
      out[:command_timeout] = read || timeout || write if read || timeout || write
      IGNORED_REDIS_OPTIONS.each { |name| redis.delete(name) }
      # What is left (after url_from_redis took its part) is ignored, loudly.
      leftover = redis.keys - %i[url host port db path password username ssl]
      warn "sessionkeeper: ignoring redis options #{leftover.inspect}" unless leftover.empty?
      out
    end
  end
end

# frozen_string_literal: true

module Sessionkeeper
  # The base of every error Sessionkeeper raises. The native extension looks
  # these classes up by name (see bindings/ruby/src/error.rs), one per engine
  # error kind.
  #
  # @example Telling a Redis outage from a bug
  #   rescue Sessionkeeper::Error => e
  #     retry_later if e.temporary?
  class Error < StandardError
    # @param message [String]
    # @param temporary [Boolean, nil] nil takes the class default
    def initialize(message = nil, temporary = nil)
      super(message)
      @temporary = temporary.nil? ? self.class.temporary_by_default? : temporary
    end

    # @return [Boolean] whether the same call may succeed later (Redis
    #   restarting, failing over or overloaded); false means retrying will
    #   fail the same way.
    def temporary?
      @temporary
    end

    # @api private
    def self.temporary_by_default?
      false
    end
  end

  # The URL or an option is wrong. Fix the configuration.
  class ConfigError < Error; end

  # Redis could not be reached or the connection broke.
  class ConnectionError < Error
    def self.temporary_by_default?
      true
    end
  end

  # Redis did not answer within command_timeout (or connect_timeout), or the
  # call was interrupted (Thread#raise, Timeout.timeout). A kind of
  # ConnectionError, so `rescue Sessionkeeper::ConnectionError` covers both.
  class TimeoutError < ConnectionError; end

  # Redis refused the credentials, or the ACL user may not run a command.
  class AuthError < Error; end

  # A stored value could not be decoded, or a Ruby value cannot be stored
  # (the message names the session key).
  class CodecError < Error; end

  # The encoded session is larger than max_size; nothing was written.
  class TooLargeError < Error; end

  # A session id that is not 32..128 characters of [A-Za-z0-9_-] was used
  # for a write.
  class InvalidIdError < Error; end

  # Anything else: a bug, or a Redis reply the engine does not understand.
  class UnexpectedError < Error; end
end

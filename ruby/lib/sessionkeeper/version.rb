# frozen_string_literal: true

module Sessionkeeper
  VERSION = "0.1.0"
end

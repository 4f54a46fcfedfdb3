# frozen_string_literal: true

require_relative "test_helper"

# The README's examples run as written (only the Redis URL is the test's).
class ReadmeTest < Minitest::Test
  README = File.expand_path("../README.md", __dir__)

  def ruby_blocks
    File.read(README).scan(/^```ruby\n(.*?)^```$/m).flatten
  end

  def test_the_direct_use_example_runs
    url = require_url(:standalone)
    block = ruby_blocks.find { |b| b.include?("Sessionkeeper::Store.new(ENV[\"REDIS_URL\"]") }
    refute_nil block, "the direct-use example changed: update this test"
    code = block.sub('ENV["REDIS_URL"]', url.inspect)
    scope = binding
    scope.eval(code, README)
    store, id = scope.local_variable_get(:store), scope.local_variable_get(:id)
    assert_equal({ "user_id" => 42, "cart" => [1, 2] }, store.load(id).data)
    assert_equal 1, store.stats[:saves]
    store.destroy(id)
  end
end

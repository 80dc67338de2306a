# frozen_string_literal: true

# Specs of the plugin's own logic (plugins/vagrant/lib), with the installed Vagrant gem
# loaded as a library. The end-to-end tests with the real `vagrant` command are in
# test/vagrant-plugin*.test.ts (run by `npm test`, which also runs these specs).
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))

require "vagrant"
require "vagrant-boxsig/plugin"

# What Vagrant does when it loads config.boxsig: the plugin's messages and error classes.
VagrantPlugins::Boxsig::Plugin.init!

RSpec.configure do |config|
  config.disable_monkey_patching!
  config.order = :random
  Kernel.srand config.seed
end

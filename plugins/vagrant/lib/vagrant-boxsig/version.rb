# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    VERSION = "0.1.0"
  end
end

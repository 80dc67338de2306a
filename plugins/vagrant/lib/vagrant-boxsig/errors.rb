# frozen_string_literal: true

module VagrantPlugins
  module Boxsig
    module Errors
      # Base class; messages live in locales/en.yml under vagrant_boxsig.errors. Every
      # value put into a message that comes from a box, a key, a catalog or a server has
      # gone through Text first.
      class BoxsigError < Vagrant::Errors::VagrantError
        error_namespace("vagrant_boxsig.errors")

        # Vagrant exits with this code; it is boxsig's own exit code where there is one
        # (1 refused, 2 usage or configuration, 3 other failure).
        def status_code
          code = extra_data[:exit_code].to_i
          code.positive? ? code : 1
        end
      end

      # boxsig refused the box (exit 1): tampered, unsigned, untrusted key, ...
      class Refused < BoxsigError
        error_key(:refused)
      end

      # boxsig could not add the box (exit 2: usage or configuration, 3: other failure).
      class AddFailed < BoxsigError
        error_key(:add_failed)
      end

      # Vagrant asked for something `boxsig add` cannot do; nothing was downloaded.
      class Unsupported < BoxsigError
        error_key(:unsupported)

        def status_code
          2
        end
      end

      # The boxsig command is not installed, or config.boxsig.binary does not point at it.
      class NotInstalled < BoxsigError
        error_key(:not_installed)

        def status_code
          3
        end
      end

      # config.boxsig.* has the wrong shape.
      class InvalidConfig < BoxsigError
        error_key(:invalid_config)

        def status_code
          2
        end
      end
    end
  end
end

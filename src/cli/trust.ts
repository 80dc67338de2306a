import type { Command } from 'commander';

export function registerTrustCommands(program: Command): void {
  void program;
}

/** One ```sh block of the README. */
export interface ShellBlock {
  heading: string;
  index: number;
  text: string;
}
export function shellBlocks(markdown: string): ShellBlock[];
export const STEPS: Readonly<Record<string, { kind: string; what: string; of?: string }>>;
export function commands(text: string): string[];
export function readmePlan(markdown: string): { blocks: Map<string, ShellBlock>; expectedMessage: string };

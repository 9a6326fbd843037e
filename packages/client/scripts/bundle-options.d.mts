import type { BuildOptions } from 'esbuild';

export declare const BUDGET_BYTES: number;
export declare const packageDir: string;
export declare const esmOptions: BuildOptions;
export declare const iifeOptions: BuildOptions;

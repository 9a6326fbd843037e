/** packages/server */
export declare const serverDir: string;
/** The dashboard's sources (packages/server/admin). */
export declare const adminSrc: string;
/** Where the gateway serves the built dashboard from (packages/server/dist/admin). */
export declare const adminOut: string;
/** Type-checks the dashboard; throws on errors. */
export declare function checkAdmin(): void;
/** Bundles and copies the dashboard into `outDir` (default `adminOut`). */
export declare function buildAdmin(outDir?: string): Promise<void>;
/** Whether the built dashboard is missing or older than its sources. */
export declare function adminBuildIsStale(outDir?: string): boolean;

/** A benchmark server running in this process. */
export interface Running {
  stop(): Promise<void>;
}

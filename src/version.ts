// The version of this build, from package.json (inlined by `bun build --compile`).
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

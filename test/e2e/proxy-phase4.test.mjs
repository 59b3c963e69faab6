// The conformance suite through mtable-proxy in phase 4, backed by Azurite.
import { runProxyTarget } from "./lib/targets.mjs";

runProxyTarget(4);

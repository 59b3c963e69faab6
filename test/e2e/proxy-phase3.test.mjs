// The conformance suite through mtable-proxy in phase 3, backed by Azurite.
import { runProxyTarget } from "./lib/targets.mjs";

runProxyTarget(3);

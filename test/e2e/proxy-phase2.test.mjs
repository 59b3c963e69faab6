// The conformance suite through mtable-proxy in phase 2, backed by Azurite.
import { runProxyTarget } from "./lib/targets.mjs";

runProxyTarget(2);

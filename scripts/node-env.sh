# scripts/node-env.sh -- source it before running node on the project's
# tests and tools, so that Debian 12's Node.js 18 runs them like a newer one.
#
#   . scripts/node-env.sh
#
# The Azure SDK calls the global crypto.randomUUID(). The global `crypto`
# (Web Crypto) is there from Node.js 19 on; Node.js 18 has it only behind
# --experimental-global-webcrypto, and without it every SDK call fails with
# "ReferenceError: crypto is not defined". When the `node` on the PATH is
# 18.x, this adds that flag to NODE_OPTIONS and exports it, so every node
# process started from this shell inherits it: node's test runner and the
# test files it runs, Azurite, the benchmark workers, the snippets the tests
# run. With any other node, or none, it changes nothing; sourcing it twice
# adds the flag once. scripts/test.sh sources it after installing the
# dependencies.
# shellcheck shell=bash

mt_node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)
if [ "$mt_node_major" = 18 ]; then
    case " ${NODE_OPTIONS:-} " in
    *" --experimental-global-webcrypto "*) ;;
    *)
        NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--experimental-global-webcrypto"
        export NODE_OPTIONS
        ;;
    esac
fi
unset mt_node_major

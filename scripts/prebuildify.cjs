#!/usr/bin/env node
// `npm run prebuildify`: writes prebuilds/<platform>-<arch>/tunekit.napi.node, which
// node-gyp-build (and scripts/install.cjs) load before trying to build.
// prebuildify drives node-gyp by default; we hand it our own builder (scripts/install.cjs
// --from-source: CMake first, node-gyp fallback) so a prebuild is built exactly as an install is.
'use strict';
const path = require('node:path');
const prebuildify = require('prebuildify');

const root = path.resolve(__dirname, '..');
const builder = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(__dirname, 'install.cjs'))} --from-source`;

prebuildify({ cwd: root, napi: true, strip: true, nodeGyp: builder, shell: true, tagLibc: true }, (err) => {
  if (err) {
    console.error(`tunekit: prebuildify failed: ${err.message}`);
    process.exit(1);
  }
  console.log(`tunekit: wrote prebuilds/${process.platform}-${process.arch}/`);
});

#!/usr/bin/env node
// The `scanflow` command (package.json "bin"). It runs the TypeScript sources directly through tsx's loader,
// like `npm start` does, so `npx scanflow …` works from a clean clone after `npm ci`, with no build step.
import { register } from 'tsx/esm/api';

// This machine may run Node 20; the SDK's end-of-support notice would only clutter stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);

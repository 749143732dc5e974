#!/usr/bin/env node
// Entry point: TypeScript runs directly through tsx's loader (no build step), so pipelines/*.ts load as they are.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');

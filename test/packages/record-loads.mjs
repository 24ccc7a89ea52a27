// node --import ./record-loads.mjs …: appends every module URL the run resolves to $OPENRUSH_LOADS, one a line.
import { register } from 'node:module';

register('./record-loads-hooks.mjs', import.meta.url, { data: { file: process.env.OPENRUSH_LOADS } });

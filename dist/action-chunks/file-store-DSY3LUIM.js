import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{a,b}from"./chunk-JTTTA4H2.js";import"./chunk-2BJ5XSWY.js";import"./chunk-333YZ5UX.js";import"./chunk-FF7BKTKR.js";import"./chunk-7GQSVGXB.js";import"./chunk-ZHPVUCUV.js";export{a as FileStore,b as conflict};

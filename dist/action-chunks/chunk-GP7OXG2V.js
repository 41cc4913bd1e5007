import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);
import{d as $,e as F}from"./chunk-YS6C2KJQ.js";import{c as R,d as C,e as A}from"./chunk-E3DFD3LW.js";import{a as d,b as c}from"./chunk-7GQSVGXB.js";import{execFile as Z}from"node:child_process";import{createHash as k,randomUUID as ee}from"node:crypto";import{constants as L,createReadStream as D}from"node:fs";import{copyFile as te,link as U,lstat as H,mkdir as y,open as z,readdir as re,readFile as ie,rename as B,rm as b,rmdir as ae,stat as I,unlink as N,writeFile as W}from"node:fs/promises";import{dirname as S,join as w,relative as K,sep as ne}from"node:path";import{availableParallelism as Y}from"node:os";import{Worker as V}from"node:worker_threads";var M=64,Q=`
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const { join } = require('node:path');
let seq = 0;
function failure(phase, e, file) { return { error: { phase, code: e && e.code ? e.code : String(e && e.message), file } }; }
function writeAll(fd, bytes) { for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done); }
function putOne(t, f) {
  let bytes;
  try { bytes = fs.readFileSync(f.absolute); } catch (e) { return failure('read', e, f.absolute); }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const size = bytes.length;
  const folder = join(t.root, t.model, 'sha256', sha256);
  const target = join(folder, f.name);
  const held = () => {
    let st;
    try { st = fs.statSync(target); } catch (e) { if (e.code === 'ENOENT') return undefined; throw e; }
    if (st.isFile() && st.size === size && fs.readFileSync(target).equals(bytes)) return { sha256, size, outcome: 'reused' };
    return { sha256, size, conflict: st.size };
  };
  let tmp;
  try {
    let fresh = true;
    try { fs.mkdirSync(folder); } catch (e) {
      if (e.code === 'ENOENT') fs.mkdirSync(folder, { recursive: true });
      else if (e.code === 'EEXIST') fresh = false;
      else throw e;
    }
    if (!fresh) { const found = held(); if (found) return found; }
    tmp = join(t.staging, workerData + '-' + ++seq + '.partial');
    const fd = fs.openSync(tmp, 'wx', 0o444);
    try { writeAll(fd, bytes); } finally { fs.closeSync(fd); }
    if (fresh) { fs.renameSync(tmp, target); tmp = undefined; return { sha256, size, outcome: 'created' }; }
    try { fs.linkSync(tmp, target); return { sha256, size, outcome: 'created' }; }
    catch (e) { if (e.code !== 'EEXIST') throw e; return held() || { sha256, size, conflict: undefined }; }
  } catch (e) {
    return failure('write', e, target);
  } finally {
    if (tmp !== undefined) try { fs.unlinkSync(tmp); } catch {}
  }
}
parentPort.on('message', ({ id, target, files }) => {
  const out = [];
  for (const f of files) {
    const r = putOne(target, f);
    out.push(r);
    if (r.error || 'conflict' in r) break;
  }
  parentPort.postMessage({ id, out });
});
`;async function x(s,r,e){let t=new Array(s.length),i=Math.max(2,Math.min(4,Y())),n=Array.from({length:Math.min(i,Math.ceil(s.length/M))},(a,u)=>new V(Q,{eval:!0,workerData:u})),o=0,f,h=a=>new Promise((u,E)=>{let p=()=>{if(f!==void 0||o>=s.length)return u();if(e.cancelled?.())return f=new c("E_CANCELLED","the registration was cancelled",d.service),u();let l=o;o=Math.min(s.length,o+M),a.postMessage({id:l,target:r,files:s.slice(l,o)})};a.on("message",({id:l,out:g})=>{let P=0;for(let[O,m]of g.entries()){if(m.error){f??=m.error.phase==="read"?new c("E_SOURCE_CHANGED",`${m.error.file} could not be read while it was being registered (${m.error.code})`,d.content):new c("E_STORE_WRITE",`storing ${m.error.file} in the file store failed: ${m.error.code}`,d.service);break}if(!m.outcome){f??=e.conflict(m.sha256,s[l+O].name,m.size,m.conflict);break}t[l+O]={sha256:m.sha256,size:m.size,outcome:m.outcome},P+=m.size}e.onBytes?.(P),p()}),a.on("error",E),p()});try{await Promise.all(n.map(h))}finally{await Promise.all(n.map(a=>a.terminate()))}if(f!==void 0)throw f;return t}var J=class{constructor(r){this.location=r}location;file(r){return w(this.location.root,...r.split("/"))}async preflight(){try{await y(this.location.root,{recursive:!0})}catch(r){throw new c("E_STORE_UNAVAILABLE",`cannot create the file store ${this.location.root}: ${r.code}`,d.service)}}async abandon(r,e){this.abandoned=!0,await b(w(this.location.root,r,".uploads",e),{recursive:!0,force:!0})}abandoned=!1;async stage(r,e){if(this.abandoned)throw new c("E_CANCELLED","the registration was cancelled",d.service);let t=this.file(A(e.model,e.uploadId,e.path));await y(S(t),{recursive:!0});let i;try{i=await oe(r,t,e.onBytes)??await G(r,t,e.onBytes)}catch(a){throw await b(t,{force:!0}),a instanceof c?a:new c("E_STORE_WRITE",`writing ${e.path} to the file store failed: ${a.code??a.message}`,d.service)}let{sha256:n,size:o}=i,f=this.location.root,h=w(f,e.model,".uploads",e.uploadId);return{sha256:n,size:o,commit:async a=>{let u=this.file(a),E=await y(S(u),{recursive:!0});try{return await U(t,u),await N(t),await ce(E?S(E):S(u),S(u)),await this.seal(a,n),"created"}catch(l){let g=l.code;if(g!=="EEXIST")throw new c("E_STORE_WRITE",`storing ${a} in the file store failed: ${g??l.name}`,d.service)}let p=await $(u);if(p.sha256!==n||p.size!==o)throw T(a,o,p.size);return await this.seal(a,n),"reused"},discard:async()=>{await N(t).catch(()=>{}),await b(h,{recursive:!0,force:!0}).catch(()=>{})}}}async putFileDeferred(r,e,t,i,n={uploadId:"deferred",model:e.slice(0,e.indexOf("/"))}){if(this.abandoned)throw new c("E_CANCELLED","the registration was cancelled",d.service);let o=this.file(e),f=async()=>{let l=await $(o,void 0,t.size);if(l.sha256===t.sha256&&l.size===t.size)return"reused";throw T(e,t.size,l.size)},h=S(o),a;try{await y(h),a=!0}catch(l){let g=l.code;if(g==="ENOENT")await y(h,{recursive:!0}),a=!0;else if(g==="EEXIST")a=!1;else throw new c("E_STORE_WRITE",`storing ${e} in the file store failed: ${g}`,d.service)}if(!a&&await this.stat(e))return i?.(t.size),f();let u=w(this.location.root,n.model,".uploads",n.uploadId);this.stagingMade.has(u)||(await y(u,{recursive:!0}),this.stagingMade.add(u));let E=w(u,`${++this.staged}.partial`),p=!1;try{let l=await G(r,E,i,{sync:!1});if(l.sha256!==t.sha256||l.size!==t.size)throw new c("E_SOURCE_CHANGED",`${r} changed while it was being registered (sha256 differs between reads)`,d.content);if(a)return await B(E,o),p=!0,"created";try{return await U(E,o),"created"}catch(g){if(g.code!=="EEXIST")throw g;return f()}}catch(l){throw l instanceof c?l:new c("E_STORE_WRITE",`storing ${e} in the file store failed: ${l.code??l.message}`,d.service)}finally{p||await N(E).catch(()=>{})}}async putSmallFiles(r,e,t){if(this.abandoned)throw new c("E_CANCELLED","the registration was cancelled",d.service);let i=w(this.location.root,e.model,".uploads",e.uploadId);return await y(i,{recursive:!0}),this.stagingMade.add(i),x(r,{root:this.location.root,model:e.model,staging:i},{...t?{onBytes:t}:{},cancelled:()=>this.abandoned,conflict:(n,o,f,h)=>T(C(e.model,n,o),f,h)})}async discardStaging(r,e){let t=w(this.location.root,r,".uploads",e);this.stagingMade.delete(t),await b(t,{recursive:!0,force:!0})}stagingMade=new Set;staged=0;async flush(){await new Promise((r,e)=>Z("sync",["-f",this.location.root],t=>t?e(new c("E_STORE_WRITE",`syncing the file store ${this.location.root} failed: ${t.message}`,d.service)):r()))}async touch(r){let e=this.file(r);for(let t=1;;t++)try{await y(S(e),{recursive:!0}),await W(e,"");return}catch(i){let n=i.code;if(n==="ENOENT"&&t<5)continue;throw new c("E_STORE_WRITE",`writing ${r} to the file store failed: ${n}`,d.service)}}async remove(r){let e=this.file(r);await b(e,{force:!0}),await b(this.sealFile(r),{force:!0}),await ae(S(e)).catch(()=>{})}async stat(r){let e;try{e=await I(this.file(r),{bigint:!0})}catch(o){if(o.code==="ENOENT"||o.code==="ENOTDIR")return;throw o}if(!e.isFile())return;let t=await ie(this.sealFile(r),"utf8").catch(()=>""),[i,n]=t.split(`
`);return{size:Number(e.size),...n===_(e)&&i&&R.test(i)?{sha256:i}:{}}}async seal(r,e){let t=this.sealFile(r),i=`${t}.${ee()}.partial`;try{let n=await I(this.file(r),{bigint:!0});await y(S(t),{recursive:!0}),await W(i,`${e}
${_(n)}
`,{flag:"wx"}),await B(i,t)}catch{await N(i).catch(()=>{})}}sealFile(r){return w(this.location.root,...le.split("/"),...r.split("/"))}async list(r){let e=this.file(r.replace(/\/$/,""));try{return(await re(e,{recursive:!0,withFileTypes:!0})).filter(i=>!i.isDirectory()).map(i=>`${r}${K(e,w(i.parentPath,i.name)).split(ne).join("/")}`)}catch(t){if(t.code==="ENOENT"||t.code==="ENOTDIR")return[];throw t}}async read(r){let e=this.file(r),t;try{t=(await H(e)).size}catch{throw new c("E_ARTIFACT_MISSING",`${this.location.uri}/${r} does not exist`,d.content)}return D(e,{highWaterMark:Math.max(65536,Math.min(1<<20,t))})}async readRange(r,e,t){let i=this.file(r);try{await H(i)}catch{throw new c("E_ARTIFACT_MISSING",`${this.location.uri}/${r} does not exist`,d.content)}return D(i,{start:e,end:t,highWaterMark:4<<20})}async presignGet(){throw new c("E_PRESIGN_UNSUPPORTED",`presigned URLs need an S3 store; this registry stores artifacts at ${this.location.uri}`,d.usage)}close(){}},se=16<<20,j=2000n;async function oe(s,r,e){let t=await I(s,{bigint:!0}),i=BigInt(Date.now());if(!t.isFile()||t.size<se||i-t.mtimeMs<j||i-t.ctimeMs<j)return;let n=await z(s,"r"),o;try{[,o]=await Promise.all([te(s,r,L.COPYFILE_EXCL|L.COPYFILE_FICLONE),F(n,[Buffer.allocUnsafe(v),Buffer.allocUnsafe(v)],async()=>{},{...e?{onBytes:e}:{}})])}finally{await n.close()}let f=await I(s,{bigint:!0}),h=await z(r,"r");try{if(_(t)!==_(f)||BigInt(o.size)!==f.size||(await h.stat()).size!==o.size)throw new c("E_SOURCE_CHANGED",`${s} changed while it was being registered`,d.content);await h.sync(),await h.chmod(292)}finally{await h.close()}return o}var v=8<<20,q=1<<20;async function G(s,r,e,t={}){let i=await z(s,"r"),n;try{if(n=await z(r,"wx",420),(await i.stat()).size<q){let a=await i.readFile();if(a.length<q)return await X(n,a,0),e?.(a.length),t.sync!==!1&&await n.sync(),await n.chmod(292),{sha256:k("sha256").update(a).digest("hex"),size:a.length};await n.truncate(0)}let f=n,h=await F(i,[Buffer.allocUnsafe(v),Buffer.allocUnsafe(v),Buffer.allocUnsafe(v)],(a,u)=>X(f,a,u),{onBytes:e,inFlight:2});return t.sync!==!1&&await f.sync(),await f.chmod(292),h}finally{await n?.close(),await i.close()}}async function X(s,r,e){for(let t=0;t<r.length;){let{bytesWritten:i}=await s.write(r,t,r.length-t,e+t);t+=i}}async function ce(s,r){let e=[s];for(let t of K(s,r).split("/").filter(Boolean))e.push(w(e.at(-1),t));for(let t of e){let i=await z(t,"r");try{await i.sync()}finally{await i.close()}}}var le=".modelgate/seals",_=s=>`${s.dev} ${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;function T(s,r,e){return new c("E_ARTIFACT_CONFLICT",`${s} already holds different bytes (${e??"?"} bytes there, ${r} bytes here); nothing was overwritten`,d.content,{key:s})}export{J as a,T as b};

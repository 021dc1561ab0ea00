import { makeCertificates } from './certs';
import https from 'node:https';
(async () => {
  const t0 = Date.now();
  const c = await makeCertificates();
  console.log('gen ms', Date.now() - t0);
  const srv = https.createServer({ key: c.key, cert: c.cert }, (_q, r) => r.end('ok')).listen(0, '127.0.0.1', () => {
    const port = (srv.address() as any).port;
    for (const servername of ['fcm.googleapis.com', undefined]) {
      https.get({ host: '127.0.0.1', port, ca: c.ca, servername, path: '/' }, (res) => { res.on('data', d => console.log(servername, String(d))); res.on('end', () => {}); }).on('error', e => console.log('ERR', servername, e.message));
    }
    setTimeout(() => srv.close(), 500);
  });
})();

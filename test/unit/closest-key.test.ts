import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closestKey } from '../../src/lib/closest-key.js';

const CONNECT = ['nodes', 'secretApi', 'tls', 'requestTimeoutMs', 'connectTimeoutMs', 'writesMax'];

test('closestKey: a misspelling within two edits, in any case', () => {
  assert.equal(closestKey('secretapi', CONNECT), 'secretApi');
  assert.equal(closestKey('secret_api', CONNECT), 'secretApi');
  assert.equal(closestKey('node', CONNECT), 'nodes');
  assert.equal(closestKey('requestTimeoutMS', CONNECT), 'requestTimeoutMs');
});

test('closestKey: failing that, the one key a word begins or the word begins with', () => {
  assert.equal(closestKey('secret', CONNECT), 'secretApi');
  assert.equal(closestKey('secretApiKey', CONNECT), 'secretApi');
  // Two keys begin with it: no guess rather than a wrong one.
  assert.equal(closestKey('request', [...CONNECT, 'requestsMax']), null);
  assert.equal(closestKey('request', CONNECT), 'requestTimeoutMs');
  // Too short to mean anything.
  assert.equal(closestKey('se', ['secretApi', 'foo']), null);
  assert.equal(closestKey('password', CONNECT), null);
  assert.equal(closestKey('x'.repeat(65), CONNECT), null);
});

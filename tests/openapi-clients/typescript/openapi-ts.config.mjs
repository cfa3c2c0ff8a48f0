// @hey-api/openapi-ts for tests/openapi-clients/run.sh: the fetch client, the SDK (one function per
// operation, validating every answer with its zod schema) and the zod schemas, generated from the
// document in $OPENAPI_DOC into $OPENAPI_OUT.
export default {
  input: process.env.OPENAPI_DOC,
  output: process.env.OPENAPI_OUT,
  plugins: ['@hey-api/client-fetch', 'zod', { name: '@hey-api/sdk', validator: true }],
};

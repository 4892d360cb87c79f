// A Node.js Lambda handler, unchanged from AWS.
let calls = 0; // survives between invocations of one warm instance

export const handler = async (event, context) => {
  calls++;
  const name = event.queryStringParameters?.name ?? "world";
  console.log(`greeting ${name} (call ${calls} of this instance)`);
  return {
    statusCode: 200,
    headers: { "content-type": "text/plain; charset=utf-8" },
    body: `Hello, ${name}! (from ${context.functionName}, Node.js ${process.version})\n`,
  };
};

// Command greet is an AWS Lambda function written for AWS, unchanged: it
// builds with aws-lambda-go into a custom runtime's bootstrap, and answers
// HTTP requests as a Lambda Function URL delivers them (API Gateway
// payload 2.0 events).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// calls survives between invocations of one warm instance, as on Lambda.
var calls int

func handler(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	calls++
	name := req.QueryStringParameters["name"]
	if name == "" {
		name = "world"
	}
	lc, _ := lambdacontext.FromContext(ctx)
	fmt.Printf("greeting %s (request %s, call %d of this instance)\n", name, lc.AwsRequestID, calls)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		Body:       fmt.Sprintf("%s, %s! (from %s, a Lambda function)\n", os.Getenv("GREETING"), name, lambdacontext.FunctionName),
	}, nil
}

func main() { lambda.Start(handler) }

package app

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/hostless/hostless/internal/function"
	"github.com/hostless/hostless/internal/wasmtest"
)

const (
	testAWSKeyID  = "AKIAHOSTLESSTEST0001"
	testAWSSecret = "s3cr3t-0123456789abcdefghijklmnopqrstuv"
)

func lambdaClient(base, id, secret string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(base),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func awsErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestLambdaInvokeAPI calls functions with the real aws-sdk-go-v2 Lambda
// client, as a team leaving AWS would.
func TestLambdaInvokeAPI(t *testing.T) {
	needSandbox(t)
	cfg := newConfig(t)
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := startApp(t, cfg)
	a.deploy("lfn", zipCode(t, wasmtest.LambdaFn(t)), function.Spec{Runtime: function.RuntimeProcess,
		Timeout: function.Duration(2 * time.Second), MemoryMB: 64, Network: function.NetworkNone})
	ctx := context.Background()
	c := lambdaClient(a.base, testAWSKeyID, testAWSSecret)

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{"action":"count"}`),
		LogType: types.LogTypeTail})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Payload) != `{"count":1}` || out.FunctionError != nil || out.StatusCode != 200 || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("invoke: %d %q %v %v", out.StatusCode, out.Payload, out.FunctionError, aws.ToString(out.ExecutedVersion))
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if !strings.Contains(string(tail), "REPORT RequestId: ") || !strings.Contains(string(tail), "Memory Size: 64 MB") {
		t.Fatalf("log tail: %q", tail)
	}

	// A handler error: 200 with X-Amz-Function-Error and Lambda's error payload.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{"action":"fail"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), `"errorMessage":"it failed on purpose"`) {
		t.Fatalf("function error: %v %q", aws.ToString(out.FunctionError), out.Payload)
	}
	// A timeout too.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{"action":"sleep","arg":"5s"}`)})
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "Task timed out") {
		t.Fatalf("timeout: %v %+v", err, out)
	}

	// By ARN with the qualifier at its end.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:lfn:1"),
		Payload: []byte(`{"action":"count"}`)})
	if err != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("by qualified ARN: %v %+v", err, out)
	}
	// By ARN with a version qualifier; DryRun; unknown function.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:lfn"),
		Qualifier: aws.String("1"), Payload: []byte(`{"action":"count"}`)})
	if err != nil || !strings.HasPrefix(string(out.Payload), `{"count":`) {
		t.Fatalf("by ARN: %v %+v", err, out)
	}
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lfn"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Fatalf("dry run: %v %+v", err, out)
	}
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)})
	if awsErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("unknown function: %v", err)
	}

	// Bad signatures and unknown keys are 403, and run nothing.
	_, err = lambdaClient(a.base, testAWSKeyID, "wrong-secret-0123456789abcdef").Invoke(ctx,
		&lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{"action":"count"}`)})
	if awsErrorCode(err) != "InvalidSignatureException" {
		t.Fatalf("wrong secret: %v", err)
	}
	_, err = lambdaClient(a.base, "AKIAUNKNOWNKEY000000", testAWSSecret).Invoke(ctx,
		&lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{}`)})
	if awsErrorCode(err) != "UnrecognizedClientException" {
		t.Fatalf("unknown key: %v", err)
	}
	if strings.Contains(err.Error(), testAWSSecret) {
		t.Fatal("the secret appears in an error")
	}
	out, _ = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("lfn"), Payload: []byte(`{"action":"count"}`)})
	if !strings.HasPrefix(string(out.Payload), `{"count":`) {
		t.Fatalf("after refusals: %q", out.Payload)
	}
}

// TestLambdaKeySurvivesRestart: the access key is stored sealed under the
// master key, so a restart without the variables still accepts it, and a
// different master key refuses to start rather than serve without it.
func TestLambdaKeySurvivesRestart(t *testing.T) {
	cfg := newConfig(t)
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = testAWSKeyID, testAWSSecret
	a := New(cfg, nil)
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey = "", ""
	b := startApp(t, cfg)
	_, err := lambdaClient(b.base, testAWSKeyID, testAWSSecret).Invoke(context.Background(),
		&lambda.InvokeInput{FunctionName: aws.String("nope"), Payload: []byte(`{}`)})
	if awsErrorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("after a restart the stored key should authenticate (then: no such function): %v", err)
	}
	b.Shutdown(context.Background())

	cfg.MasterKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	c := New(cfg, nil)
	err = c.Start(context.Background())
	c.Close(context.Background())
	if err == nil || strings.Contains(err.Error(), testAWSSecret) {
		t.Fatalf("a different master key must refuse to start, without the secret in its message: %v", err)
	}
}

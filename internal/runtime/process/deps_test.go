package process_test

// testdata/lambdafn's S3 action configures the AWS SDK from its
// environment, as Lambda functions do; go mod tidy skips testdata, so
// this import keeps the module in go.mod.
import _ "github.com/aws/aws-sdk-go-v2/config"

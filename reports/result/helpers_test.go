package result_test

import "os"

var readFile = os.ReadFile

package routeeval

import (
	"encoding/json"
	"strconv"
)

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

func appendQuality(b []byte, who string, v float64) []byte {
	switch v {
	case 0, 1:
		b = append(b, `,"`+who+`_correct":`...)
		return strconv.AppendBool(b, v == 1)
	}
	b = append(b, `,"`+who+`_score":`...)
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

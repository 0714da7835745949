/// The OpenAPI 3.1 document of the edge, written by hand and kept true by `OpenAPITests`
/// (every route documented, every documented route served) and by the schema-driven fuzzing
/// in `scripts/fuzz-api` (every answer matches its documented schema and status).
enum OpenAPIDocument {
    static let json = #"""
{
 "openapi": "3.1.0",
 "info": {
  "title": "Depot",
  "version": "1.0.0",
  "description": "Event-driven order processing: commands in (202 after the broker's confirm), projections out."
 },
 "servers": [
  {
   "url": "/"
  }
 ],
 "paths": {
  "/v1/products": {
   "post": {
    "operationId": "createProduct",
    "summary": "Create a product (admin)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/ProductCreate"
       }
      }
     }
    },
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "201": {
      "description": "Created (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Product"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "403": {
      "$ref": "#/components/responses/Forbidden"
     },
     "409": {
      "$ref": "#/components/responses/Conflict"
     },
     "413": {
      "$ref": "#/components/responses/ContentTooLarge"
     },
     "415": {
      "$ref": "#/components/responses/UnsupportedMediaType"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   },
   "get": {
    "operationId": "listProducts",
    "summary": "List products in sku order",
    "parameters": [
     {
      "$ref": "#/components/parameters/Limit"
     },
     {
      "$ref": "#/components/parameters/After"
     }
    ],
    "responses": {
     "200": {
      "description": "A page of products",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/ProductPage"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/v1/products/{sku}": {
   "get": {
    "operationId": "getProduct",
    "summary": "Read a product",
    "parameters": [
     {
      "$ref": "#/components/parameters/Sku"
     },
     {
      "$ref": "#/components/parameters/IfNoneMatch"
     }
    ],
    "responses": {
     "200": {
      "description": "The product",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Product"
        }
       }
      },
      "headers": {
       "ETag": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "304": {
      "description": "Not modified",
      "headers": {
       "ETag": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   },
   "patch": {
    "operationId": "updateProduct",
    "summary": "Rename or reprice a product (admin)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/Sku"
     },
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/ProductUpdate"
       }
      }
     }
    },
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "200": {
      "description": "Updated (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Product"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "403": {
      "$ref": "#/components/responses/Forbidden"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "413": {
      "$ref": "#/components/responses/ContentTooLarge"
     },
     "415": {
      "$ref": "#/components/responses/UnsupportedMediaType"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   },
   "delete": {
    "operationId": "discontinueProduct",
    "summary": "Discontinue a product (admin)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/Sku"
     },
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "200": {
      "description": "Discontinued (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Product"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "403": {
      "$ref": "#/components/responses/Forbidden"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   }
  },
  "/v1/products/{sku}/stock": {
   "post": {
    "operationId": "adjustStock",
    "summary": "Restock (+) or write off (−) (admin)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/Sku"
     },
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/StockAdjustment"
       }
      }
     }
    },
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "200": {
      "description": "Adjusted (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Product"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "403": {
      "$ref": "#/components/responses/Forbidden"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "409": {
      "$ref": "#/components/responses/Conflict"
     },
     "413": {
      "$ref": "#/components/responses/ContentTooLarge"
     },
     "415": {
      "$ref": "#/components/responses/UnsupportedMediaType"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   }
  },
  "/v1/orders": {
   "post": {
    "operationId": "placeOrder",
    "summary": "Place an order for the token's subject",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "name": "Idempotency-Key",
      "in": "header",
      "required": true,
      "schema": {
       "type": "string",
       "minLength": 1,
       "maxLength": 128
      }
     },
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/OrderCreate"
       }
      }
     }
    },
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "201": {
      "description": "Final (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Order"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "409": {
      "$ref": "#/components/responses/Conflict"
     },
     "413": {
      "$ref": "#/components/responses/ContentTooLarge"
     },
     "415": {
      "$ref": "#/components/responses/UnsupportedMediaType"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   },
   "get": {
    "operationId": "listOrders",
    "summary": "List orders, newest first (customers: their own)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "name": "status",
      "in": "query",
      "required": false,
      "schema": {
       "$ref": "#/components/schemas/OrderStatus"
      }
     },
     {
      "name": "customer_id",
      "in": "query",
      "required": false,
      "description": "admin only, or the caller's own id",
      "schema": {
       "type": "string"
      }
     },
     {
      "$ref": "#/components/parameters/Limit"
     },
     {
      "$ref": "#/components/parameters/After"
     }
    ],
    "responses": {
     "200": {
      "description": "A page of orders",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/OrderPage"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/BadRequest"
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "403": {
      "$ref": "#/components/responses/Forbidden"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/v1/orders/{id}": {
   "get": {
    "operationId": "getOrder",
    "summary": "Read an order (its customer or an admin)",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/OrderId"
     },
     {
      "$ref": "#/components/parameters/IfNoneMatch"
     }
    ],
    "responses": {
     "200": {
      "description": "The order",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Order"
        }
       }
      },
      "headers": {
       "ETag": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "304": {
      "description": "Not modified",
      "headers": {
       "ETag": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/v1/orders/{id}/cancel": {
   "post": {
    "operationId": "cancelOrder",
    "summary": "Cancel an order before it is confirmed",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/OrderId"
     },
     {
      "$ref": "#/components/parameters/Prefer"
     }
    ],
    "responses": {
     "202": {
      "$ref": "#/components/responses/Accepted"
     },
     "200": {
      "description": "Cancelled (with Prefer: wait)",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Order"
        }
       }
      },
      "headers": {
       "Location": {
        "description": "Where to read the result",
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "409": {
      "$ref": "#/components/responses/Conflict"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     },
     "503": {
      "$ref": "#/components/responses/ServiceUnavailable"
     }
    }
   }
  },
  "/v1/orders/{id}/events": {
   "get": {
    "operationId": "orderEvents",
    "summary": "The order's events as on the broker, with log positions",
    "security": [
     {
      "bearer": []
     }
    ],
    "parameters": [
     {
      "$ref": "#/components/parameters/OrderId"
     }
    ],
    "responses": {
     "200": {
      "description": "The events in log order",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/EventList"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "404": {
      "$ref": "#/components/responses/NotFound"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/healthz": {
   "get": {
    "operationId": "health",
    "summary": "The process is alive",
    "responses": {
     "200": {
      "description": "Alive",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "required": [
          "status"
         ],
         "properties": {
          "status": {
           "const": "ok"
          }
         }
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/readyz": {
   "get": {
    "operationId": "ready",
    "summary": "Broker and databases reachable",
    "responses": {
     "200": {
      "description": "Ready",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Readiness"
        }
       }
      }
     },
     "503": {
      "description": "Not ready",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Readiness"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/metrics": {
   "get": {
    "operationId": "metrics",
    "summary": "Prometheus text format",
    "responses": {
     "200": {
      "description": "Metrics",
      "content": {
       "text/plain": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/openapi.json": {
   "get": {
    "operationId": "openapi",
    "summary": "This document",
    "responses": {
     "200": {
      "description": "OpenAPI 3.1",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  },
  "/docs": {
   "get": {
    "operationId": "docs",
    "summary": "This document as a page",
    "responses": {
     "200": {
      "description": "HTML",
      "content": {
       "text/html": {
        "schema": {
         "type": "string"
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Unauthorized"
     },
     "429": {
      "$ref": "#/components/responses/TooManyRequests"
     }
    }
   }
  }
 },
 "components": {
  "responses": {
   "BadRequest": {
    "description": "Malformed JSON or an invalid field (each named in `errors`)",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "Unauthorized": {
    "description": "No valid bearer token",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "Forbidden": {
    "description": "The token's role may not do this",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "NotFound": {
    "description": "Unknown resource",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "Conflict": {
    "description": "Conflicts with the resource's state",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "ContentTooLarge": {
    "description": "Body over 64 KiB",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "UnsupportedMediaType": {
    "description": "Body is not application/json",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    }
   },
   "TooManyRequests": {
    "description": "Rate limit exceeded",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    },
    "headers": {
     "Retry-After": {
      "schema": {
       "type": "integer"
      }
     }
    }
   },
   "ServiceUnavailable": {
    "description": "The broker could not confirm the command in time",
    "content": {
     "application/problem+json": {
      "schema": {
       "$ref": "#/components/schemas/Problem"
      }
     }
    },
    "headers": {
     "Retry-After": {
      "schema": {
       "type": "integer"
      }
     }
    }
   },
   "Accepted": {
    "description": "The command is durably on the broker",
    "content": {
     "application/json": {
      "schema": {
       "$ref": "#/components/schemas/Accepted"
      }
     }
    },
    "headers": {
     "Location": {
      "description": "Where to read the result",
      "schema": {
       "type": "string"
      }
     }
    }
   }
  },
  "parameters": {
   "Sku": {
    "name": "sku",
    "in": "path",
    "required": true,
    "schema": {
     "type": "string",
     "pattern": "^[A-Za-z0-9._-]{1,64}$"
    }
   },
   "OrderId": {
    "name": "id",
    "in": "path",
    "required": true,
    "schema": {
     "type": "string",
     "format": "uuid"
    }
   },
   "Prefer": {
    "name": "Prefer",
    "in": "header",
    "required": false,
    "description": "wait=N (N ≤ 10): hold the answer until the projection shows the effect",
    "schema": {
     "type": "string"
    }
   },
   "Limit": {
    "name": "limit",
    "in": "query",
    "required": false,
    "schema": {
     "type": "integer",
     "minimum": 1,
     "maximum": 500,
     "default": 50
    }
   },
   "After": {
    "name": "after",
    "in": "query",
    "required": false,
    "description": "The `next` cursor of the previous page",
    "schema": {
     "type": "string"
    }
   },
   "IfNoneMatch": {
    "name": "If-None-Match",
    "in": "header",
    "required": false,
    "schema": {
     "type": "string"
    }
   }
  },
  "securitySchemes": {
   "bearer": {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT (HS256; claims sub, role customer|admin, exp)"
   }
  },
  "schemas": {
   "Problem": {
    "type": "object",
    "required": [
     "type",
     "title",
     "status",
     "detail"
    ],
    "properties": {
     "type": {
      "type": "string"
     },
     "title": {
      "type": "string"
     },
     "status": {
      "type": "integer"
     },
     "detail": {
      "type": "string"
     },
     "errors": {
      "type": "array",
      "items": {
       "type": "object",
       "required": [
        "field",
        "message"
       ],
       "properties": {
        "field": {
         "type": "string"
        },
        "message": {
         "type": "string"
        }
       }
      }
     }
    }
   },
   "Accepted": {
    "type": "object",
    "required": [
     "id",
     "status"
    ],
    "additionalProperties": false,
    "properties": {
     "id": {
      "type": "string",
      "format": "uuid"
     },
     "status": {
      "const": "accepted"
     }
    }
   },
   "ProductCreate": {
    "type": "object",
    "required": [
     "sku",
     "name",
     "price_cents",
     "stock"
    ],
    "additionalProperties": false,
    "properties": {
     "sku": {
      "type": "string",
      "pattern": "^[A-Za-z0-9._-]{1,64}$"
     },
     "name": {
      "type": "string",
      "minLength": 1,
      "maxLength": 200
     },
     "price_cents": {
      "type": "integer",
      "minimum": 0,
      "maximum": 1000000000
     },
     "stock": {
      "type": "integer",
      "minimum": 0,
      "maximum": 1000000000
     }
    }
   },
   "ProductUpdate": {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": false,
    "properties": {
     "name": {
      "type": "string",
      "minLength": 1,
      "maxLength": 200
     },
     "price_cents": {
      "type": "integer",
      "minimum": 0,
      "maximum": 1000000000
     }
    }
   },
   "StockAdjustment": {
    "type": "object",
    "required": [
     "delta"
    ],
    "additionalProperties": false,
    "properties": {
     "delta": {
      "type": "integer",
      "minimum": -1000000000,
      "maximum": 1000000000,
      "not": {
       "const": 0
      }
     }
    }
   },
   "Product": {
    "type": "object",
    "additionalProperties": false,
    "required": [
     "sku",
     "name",
     "price_cents",
     "stock_available",
     "stock_reserved",
     "discontinued",
     "version",
     "updated_at"
    ],
    "properties": {
     "sku": {
      "type": "string"
     },
     "name": {
      "type": "string"
     },
     "price_cents": {
      "type": "integer"
     },
     "stock_available": {
      "type": "integer"
     },
     "stock_reserved": {
      "type": "integer"
     },
     "discontinued": {
      "type": "boolean"
     },
     "version": {
      "type": "integer"
     },
     "updated_at": {
      "type": "string",
      "format": "date-time"
     }
    }
   },
   "ProductPage": {
    "type": "object",
    "required": [
     "items",
     "next"
    ],
    "additionalProperties": false,
    "properties": {
     "items": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/Product"
      }
     },
     "next": {
      "type": [
       "string",
       "null"
      ]
     }
    }
   },
   "OrderStatus": {
    "type": "string",
    "enum": [
     "pending",
     "reserved",
     "confirmed",
     "rejected",
     "cancelled"
    ]
   },
   "OrderCreate": {
    "type": "object",
    "required": [
     "lines",
     "payment"
    ],
    "additionalProperties": false,
    "properties": {
     "lines": {
      "type": "array",
      "minItems": 1,
      "maxItems": 50,
      "items": {
       "type": "object",
       "required": [
        "sku",
        "quantity"
       ],
       "additionalProperties": false,
       "properties": {
        "sku": {
         "type": "string",
         "pattern": "^[A-Za-z0-9._-]{1,64}$"
        },
        "quantity": {
         "type": "integer",
         "minimum": 1,
         "maximum": 1000
        }
       }
      }
     },
     "payment": {
      "type": "object",
      "required": [
       "token"
      ],
      "additionalProperties": false,
      "properties": {
       "token": {
        "type": "string",
        "minLength": 1,
        "maxLength": 128
       }
      }
     }
    }
   },
   "Order": {
    "type": "object",
    "additionalProperties": false,
    "required": [
     "id",
     "customer_id",
     "status",
     "lines",
     "total_cents",
     "payment",
     "created_at",
     "updated_at",
     "version"
    ],
    "properties": {
     "id": {
      "type": "string",
      "format": "uuid"
     },
     "customer_id": {
      "type": "string"
     },
     "status": {
      "$ref": "#/components/schemas/OrderStatus"
     },
     "lines": {
      "type": "array",
      "items": {
       "type": "object",
       "required": [
        "sku",
        "quantity",
        "unit_price_cents"
       ],
       "additionalProperties": false,
       "properties": {
        "sku": {
         "type": "string"
        },
        "quantity": {
         "type": "integer"
        },
        "unit_price_cents": {
         "type": [
          "integer",
          "null"
         ]
        }
       }
      }
     },
     "total_cents": {
      "type": [
       "integer",
       "null"
      ]
     },
     "payment": {
      "type": "object",
      "required": [
       "status"
      ],
      "additionalProperties": false,
      "properties": {
       "status": {
        "type": "string",
        "enum": [
         "none",
         "pending",
         "settled",
         "declined"
        ]
       },
       "reference": {
        "type": "string"
       }
      }
     },
     "reason": {
      "type": "string"
     },
     "created_at": {
      "type": "string",
      "format": "date-time"
     },
     "updated_at": {
      "type": "string",
      "format": "date-time"
     },
     "version": {
      "type": "integer"
     }
    }
   },
   "OrderPage": {
    "type": "object",
    "required": [
     "items",
     "next"
    ],
    "additionalProperties": false,
    "properties": {
     "items": {
      "type": "array",
      "items": {
       "$ref": "#/components/schemas/Order"
      }
     },
     "next": {
      "type": [
       "string",
       "null"
      ]
     }
    }
   },
   "EventList": {
    "type": "object",
    "required": [
     "items"
    ],
    "additionalProperties": false,
    "properties": {
     "items": {
      "type": "array",
      "items": {
       "type": "object",
       "required": [
        "position",
        "id",
        "type",
        "version",
        "occurred_at",
        "correlation_id",
        "data"
       ],
       "properties": {
        "position": {
         "type": "integer"
        },
        "id": {
         "type": "string",
         "format": "uuid"
        },
        "type": {
         "type": "string"
        },
        "version": {
         "type": "integer"
        },
        "occurred_at": {
         "type": "string",
         "format": "date-time"
        },
        "correlation_id": {
         "type": "string"
        },
        "causation_id": {
         "type": [
          "string",
          "null"
         ]
        },
        "data": {
         "type": "object"
        }
       }
      }
     }
    }
   },
   "Readiness": {
    "type": "object",
    "required": [
     "status",
     "broker",
     "database",
     "read_database"
    ],
    "properties": {
     "status": {
      "type": "string",
      "enum": [
       "ready",
       "not ready"
      ]
     },
     "broker": {
      "type": "string"
     },
     "database": {
      "type": "string"
     },
     "read_database": {
      "type": "string"
     }
    }
   }
  }
 }
}
"""#
}

#!/bin/sh
echo script from the context
